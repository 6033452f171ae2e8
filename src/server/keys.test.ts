import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { MemoryStateStore } from "../stores/index.js";
import { ApiKeyStore } from "./keys.js";

const dir = mkdtempSync(join(tmpdir(), "tw-keys-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("ApiKeyStore", () => {
  const file = join(dir, "keys.json");
  const store = ApiKeyStore.open(file);
  const admin = store.create({ role: "admin", name: "root" });
  const agent = store.create({ role: "agent", name: "bot", agent: "bot-1", attrs: { team: "a" } });

  it("verifies its keys and nothing else", () => {
    expect(store.verify(admin.key)).toMatchObject({ role: "admin", name: "root" });
    expect(store.verify(agent.key)).toMatchObject({ role: "agent", agent: "bot-1", attrs: { team: "a" } });
    const [, id, secret] = admin.key.split("_");
    const flipped = `twk_${id}_${secret[0] === "A" ? "B" : "A"}${secret.slice(1)}`;
    for (const wrong of [
      "",
      "twk",
      flipped,
      `twk_000000000000_${secret}`,
      `${admin.key} `,
      admin.key.toUpperCase(),
    ]) {
      expect(store.verify(wrong)).toBeUndefined();
    }
  });

  it("keeps only hashes on disk, mode 0600, and reads them back", () => {
    const text = readFileSync(file, "utf8");
    // The secret is everything after `twk_<12 hex>_` (base64url: it may contain `_` itself).
    expect(text).not.toContain(admin.key.slice("twk_000000000000_".length));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const reopened = ApiKeyStore.open(file);
    expect(reopened.verify(agent.key)?.id).toBe(agent.identity.id);
  });

  it("refuses an agent key without an agent id, and forgets revoked keys", () => {
    expect(() => store.create({ role: "agent", name: "x" })).toThrow(/agent id/);
    expect(store.revoke(agent.identity.id)).toBe(true);
    expect(store.verify(agent.key)).toBeUndefined();
    expect(ApiKeyStore.open(file).verify(agent.key)).toBeUndefined();
    expect(store.revoke(agent.identity.id)).toBe(false);
  });

  it("refuses a key it verified before once it is revoked here or on another replica", async () => {
    const shared = new MemoryStateStore();
    const here = ApiKeyStore.open(undefined);
    const there = ApiKeyStore.open(undefined);
    await here.share(shared);
    await there.share(shared);
    const first = await here.createKey({ role: "agent", name: "a", agent: "a" });
    const second = await here.createKey({ role: "agent", name: "b", agent: "b" });
    await there.refresh(0);
    for (let i = 0; i < 3; i++) {
      expect(there.verify(first.key)?.id).toBe(first.identity.id);
      expect(here.verify(second.key)?.id).toBe(second.identity.id);
    }
    await here.revokeKey(first.identity.id);
    await there.refresh(0);
    expect(there.verify(first.key)).toBeUndefined();
    expect(here.verify(first.key)).toBeUndefined();
    here.revoke(second.identity.id);
    expect(here.verify(second.key)).toBeUndefined();
  });
});
