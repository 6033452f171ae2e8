import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SqliteStateStore } from "../stores/sqlite/index.js";
import type { SessionLimits, SessionRead } from "../stores/types.js";
import { Warden } from "./warden.js";

/** A real SQLite state store that counts the session reads made through it. */
class CountingStore extends SqliteStateStore {
  reads = 0;
  override readSession(
    id: string,
    after: number,
    limits: SessionLimits,
    now: number,
  ): Promise<SessionRead | undefined> {
    this.reads++;
    return super.readSession(id, after, limits, now);
  }
}

const policy = {
  version: 1,
  default: "allow",
  tools: { fetch_page: { produces: ["untrusted"] }, send_email: { sink: "email" } },
  rules: [
    { name: "no-exfil", when: { sink: "email", "args.body": { flows: ["untrusted"] } }, verdict: "deny" },
  ],
};

describe("decide with the session openSession just brought up to date", () => {
  const dir = mkdtempSync(join(tmpdir(), "tw-opened-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("reads the session from the store once per call, and still sees what another replica recorded", async () => {
    const path = join(dir, "state.db");
    const storeA = new CountingStore({ path });
    const a = Warden.fromObject(policy, { store: storeA });
    const b = Warden.fromObject(policy, { store: new SqliteStateStore({ path }) });
    const secret = "the quarterly numbers are 4,711,000 and must not leave the building";
    await b.openSession({ id: "s1", agent: { id: "bot" } });
    b.recordOutput({ tool: "fetch_page", args: {}, session: "s1" }, secret);
    await b.flush("s1");

    const call = { tool: "send_email", args: { body: secret }, session: "s1", agent: { id: "bot" } };
    const before = storeA.reads;
    const opened = await a.openSession({ id: "s1", agent: { id: "bot" } });
    const decision = await a.decide(call, opened);
    expect(storeA.reads - before).toBe(1);
    expect(decision).toMatchObject({ verdict: "deny", rule: "no-exfil" });

    // Without it, decide reads the session itself (a second read for the same call).
    const again = storeA.reads;
    await a.openSession({ id: "s1", agent: { id: "bot" } });
    expect(await a.decide(call)).toMatchObject({ verdict: "deny", rule: "no-exfil" });
    expect(storeA.reads - again).toBe(2);
    await a.close();
    await b.close();
  });

  it("ignores a session that is not the call's", async () => {
    const store = new CountingStore({ path: join(dir, "other.db") });
    const w = Warden.fromObject(policy, { store });
    const other = await w.openSession({ id: "s2", agent: { id: "bot" } });
    const before = store.reads;
    await w.decide({ tool: "fetch_page", args: {}, session: "s3", agent: { id: "bot" } }, other);
    expect(store.reads - before).toBe(1);
    await w.close();
  });
});
