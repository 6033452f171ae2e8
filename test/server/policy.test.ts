import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FIXTURE_POLICY, startTestServer, type TestServer } from "./helpers.js";

const STRICTER = readFileSync(FIXTURE_POLICY, "utf8")
  .replace("allow: [search_docs,", "allow: [")
  .replace('deny: ["delete_*"]', 'deny: ["delete_*", search_docs]');

describe("policy versions over the API", () => {
  let t: TestServer;
  let agent: string;
  let original: string;

  beforeAll(async () => {
    t = await startTestServer();
    agent = await t.key("agent", "bot-1");
    original = t.server.policies.active.hash;
    for (const q of ["refunds", "returns"]) {
      await t.request("POST", "/v1/decide", {
        key: agent,
        body: { call: { tool: "search_docs", args: { q } } },
      });
    }
    await t.request("POST", "/v1/decide", {
      key: agent,
      body: { call: { tool: "read_ticket", args: { id: 1 } } },
    });
  });

  afterAll(async () => {
    await t?.close();
  });

  it("validation names line and column, and nothing is stored", async () => {
    const res = await t.request("POST", "/v1/policy/versions", {
      key: t.adminKey,
      body: { source: "version: 1\nname: broken\ndefault: maybe\nrulez: []\n" },
    });
    expect(res.status).toBe(422);
    expect(res.body.valid).toBe(false);
    const where = res.body.errors.map((e: any) => `${e.file}:${e.line}:${e.col}`);
    expect(where).toContain("upload:3:10");
    expect(where).toContain("upload:4:1");
    expect(res.body.errors.find((e: any) => e.line === 4).help).toContain("rules");
    expect(t.server.policies.list()).toHaveLength(1);
  });

  it("a dry run lists the recent decisions a version would change", async () => {
    const res = await t.request("POST", "/v1/policy/dry-run", {
      key: t.adminKey,
      body: { source: STRICTER },
    });
    expect(res.status).toBe(200);
    expect(res.body.source).toBe("memory");
    expect(res.body.compared).toBe(3);
    expect(res.body.changed).toHaveLength(2);
    expect(res.body.changed[0]).toMatchObject({
      tool: "search_docs",
      agent: "bot-1",
      recorded: { verdict: "allow" },
      before: { verdict: "allow" },
      after: { verdict: "deny", rule: "deny:search_docs" },
    });
    expect(res.body.from).toBe(original);
  });

  it("upload, activate and roll back, each audited with both hashes", async () => {
    const uploaded = await t.request("POST", "/v1/policy/versions", {
      key: t.adminKey,
      body: { source: STRICTER },
    });
    expect(uploaded.status).toBe(201);
    const hash = uploaded.body.version.hash;
    expect(uploaded.body.version).toMatchObject({
      origin: "upload",
      createdBy: "admin",
      name: "server-test",
    });
    expect(uploaded.body.change).toBeUndefined();
    expect(t.server.policies.active.hash).toBe(original);

    const stored = await t.request("GET", `/v1/policy/versions/${hash}`, { key: t.adminKey });
    expect(stored.body.source).toBe(STRICTER);

    const activated = await t.request("POST", `/v1/policy/versions/${hash}/activate`, { key: t.adminKey });
    expect(activated.body).toEqual({ action: "activate", from: original, to: hash, by: "admin" });
    const denied = await t.request("POST", "/v1/decide", {
      key: agent,
      body: { call: { tool: "search_docs" } },
    });
    expect(denied.body.verdict).toBe("deny");
    const info = await t.request("GET", "/v1/policy", { key: t.adminKey });
    expect(info.body.hash).toBe(hash);
    expect(info.body.sources[0].text).toBe(STRICTER);

    const rolled = await t.request("POST", "/v1/policy/rollback", { key: t.adminKey });
    expect(rolled.body).toEqual({ action: "rollback", from: hash, to: original, by: "admin" });
    expect(
      (await t.request("POST", "/v1/decide", { key: agent, body: { call: { tool: "search_docs" } } })).body
        .verdict,
    ).toBe("allow");
    const nothing = await t.request("POST", "/v1/policy/rollback", { key: t.adminKey });
    expect(nothing.status).toBe(409);

    await t.server.audit.flush();
    const { records } = await t.server.reader.query({ kind: "policy" });
    const changes = records.map((r) => r.data).reverse();
    expect(changes.map((d: any) => [d.action, d.from, d.to])).toEqual([
      ["start", original, original],
      ["activate", original, hash],
      ["rollback", hash, original],
    ]);
    const versions = await t.request("GET", "/v1/policy/versions", { key: t.adminKey });
    expect(versions.body.versions.map((v: any) => [v.hash, v.active])).toEqual([
      [hash, false],
      [original, true],
    ]);
  });

  it("activating an unknown version is 404", async () => {
    const res = await t.request("POST", `/v1/policy/versions/${"a".repeat(64)}/activate`, {
      key: t.adminKey,
    });
    expect(res.status).toBe(404);
  });
});

describe("hot reload of the policy file", () => {
  let t: TestServer;
  let dir: string;
  let file: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "tw-reload-"));
    file = join(dir, "policy.yaml");
    copyFileSync(FIXTURE_POLICY, file);
    t = await startTestServer({ policy: file, watch: true });
  });

  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("swaps in a valid edit, keeps the old policy on an invalid one, and audits both", async () => {
    const first = t.server.policies.active.hash;
    // Editors save by renaming a new file over the old one: do the same.
    writeFileSync(`${file}.tmp`, STRICTER);
    (await import("node:fs")).renameSync(`${file}.tmp`, file);
    const second = await until(() =>
      t.server.policies.active.hash !== first ? t.server.policies.active.hash : undefined,
    );
    const agent = await t.key("agent", "bot-1");
    expect(
      (await t.request("POST", "/v1/decide", { key: agent, body: { call: { tool: "search_docs" } } })).body
        .verdict,
    ).toBe("deny");

    writeFileSync(file, `${STRICTER}\nrules: [ { name: x, when: { tool: a }, verdict: perhaps } ]\n`);
    const rejected = await until(async () => {
      await t.server.audit.flush();
      const { records } = await t.server.reader.query({ kind: "policy" });
      return records.find((r) => (r.data as any)?.action === "reload_rejected");
    });
    expect(t.server.policies.active.hash).toBe(second);
    expect(rejected.data).toMatchObject({ from: second });
    expect((rejected.data as any).errors[0]).toMatch(/policy\.yaml:\d+:\d+: /);

    await t.server.audit.flush();
    const { records } = await t.server.reader.query({ kind: "policy" });
    const reload = records.find((r) => (r.data as any)?.action === "reload");
    expect(reload?.data).toMatchObject({ from: first, to: second, by: "file-watch" });
    expect(reload?.policy).toBe(second);
  });
});

/** Polls until `probe` returns something (at most 10 s). */
async function until<T>(probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error("condition not met within 10 s");
}
