import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JsonlAuditSink } from "../../src/audit/jsonl-sink.js";
import { approvals } from "../../src/cli/approvals.js";
import { CliError } from "../../src/cli/util.js";
import { Warden } from "../../src/gateway/index.js";
import { SqliteStateStore } from "../../src/stores/sqlite/index.js";
import { FIXTURE_POLICY } from "./helpers.js";

const KEY = "a".repeat(32);

async function cli(args: string[]) {
  let stdout = "";
  let stderr = "";
  const write = process.stdout.write;
  const writeErr = process.stderr.write;
  process.stdout.write = ((chunk: string) => {
    stdout += chunk;
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => {
    stderr += chunk;
    return true;
  }) as typeof process.stderr.write;
  const saved = process.env.TOOLWARDEN_AUDIT_KEY;
  process.env.TOOLWARDEN_AUDIT_KEY = KEY;
  try {
    return { code: await approvals.run(args), stdout, stderr };
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    return { code: error.exitCode, stdout, stderr: `${stderr}${error.message}\n` };
  } finally {
    process.stdout.write = write;
    process.stderr.write = writeErr;
    if (saved === undefined) delete process.env.TOOLWARDEN_AUDIT_KEY;
    else process.env.TOOLWARDEN_AUDIT_KEY = saved;
  }
}

function records(log: string): any[] {
  return readFileSync(log, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}

describe("every approval decision is audited with approver and reason", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "tw-approvals-audited-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("a decision made through --store while a gateway holds the audit log is audited by that gateway", async () => {
    const db = join(dir, "a.db");
    const log = join(dir, "a.jsonl");
    // The running process (gateway or server): it holds the audit log's lock.
    const warden = Warden.fromFile(FIXTURE_POLICY, {
      store: new SqliteStateStore({ path: db }),
      audit: await JsonlAuditSink.open({ path: log, key: KEY }),
    });
    const call = { tool: "refund", args: { amount: 400 }, agent: { id: "bot-1" }, session: "s-a" };
    const asked = await warden.decide(call);
    expect(asked.verdict).toBe("ask");

    const denied = await cli([
      "deny",
      asked.approval!,
      "--store",
      `sqlite:${db}`,
      "--by",
      "dana",
      "--reason",
      "not today",
      "--audit",
      log,
    ]);
    expect(denied.code).toBe(0);
    expect(denied.stderr).toContain("is held by");

    // The holder audits the decision it sees in the store (at once on close; else within its poll).
    await warden.close();
    const approval = records(log).find((r) => r.kind === "approval");
    expect(approval).toMatchObject({
      tool: "refund",
      approval: { id: asked.approval, status: "denied", by: "dana", reason: "not today" },
    });
  });

  it("the holder audits store decisions while it runs, once each", async () => {
    const db = join(dir, "b.db");
    const log = join(dir, "b.jsonl");
    const warden = Warden.fromFile(FIXTURE_POLICY, {
      store: new SqliteStateStore({ path: db }),
      audit: await JsonlAuditSink.open({ path: log, key: KEY }),
      approvals: { auditPoll: 50 },
    });
    const asked = await warden.decide({ tool: "refund", args: { amount: 300 }, session: "s-b" });
    const approved = await cli([
      "approve",
      asked.approval!,
      "--store",
      `sqlite:${db}`,
      "--by",
      "erin",
      "--audit",
      log,
    ]);
    expect(approved.code).toBe(0);
    let found: any[] = [];
    for (let i = 0; i < 100 && !found.length; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      found = records(log).filter((r) => r.kind === "approval");
    }
    await warden.close();
    const all = records(log).filter((r) => r.kind === "approval");
    expect(all).toHaveLength(1);
    expect(all[0].approval).toMatchObject({ id: asked.approval, status: "approved", by: "erin" });
  });

  it("refuses to decide against a store with no audit log named, and leaves the approval pending", async () => {
    const db = join(dir, "c.db");
    const warden = Warden.fromFile(FIXTURE_POLICY, { store: new SqliteStateStore({ path: db }) });
    const asked = await warden.decide({ tool: "refund", args: { amount: 300 }, session: "s-c" });
    const refused = await cli(["approve", asked.approval!, "--store", `sqlite:${db}`]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("--audit LOG");
    expect((await warden.store.getApproval(asked.approval!))?.status).toBe("pending");
    await warden.close();
  });

  it("the CLI audits the decision itself when nobody holds the log", async () => {
    const db = join(dir, "d.db");
    const log = join(dir, "d.jsonl");
    const warden = Warden.fromFile(FIXTURE_POLICY, { store: new SqliteStateStore({ path: db }) });
    const asked = await warden.decide({ tool: "refund", args: { amount: 300 }, session: "s-d" });
    await warden.close();
    const denied = await cli([
      "deny",
      asked.approval!,
      "--store",
      `sqlite:${db}`,
      "--by",
      "fay",
      "--reason",
      "no",
      "--audit",
      log,
    ]);
    expect(denied.code).toBe(0);
    expect(records(log)).toEqual([
      expect.objectContaining({
        kind: "approval",
        approval: { id: asked.approval, status: "denied", by: "fay", reason: "no" },
      }),
    ]);
  });
});
