import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { JsonlAuditSink } from "../audit/jsonl-sink.js";
import { SqliteAuditSink } from "../audit/sqlite-sink.js";
import { replayStep } from "../policy-tools/index.js";
import { Warden } from "../gateway/index.js";
import { run } from "./audit.js";

const EXAMPLE = join(import.meta.dirname, "../../examples/support-bot");
const KEY = "stats-test-key-0123456789abcdef";

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await run(argv, {
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
    env: { TOOLWARDEN_AUDIT_KEY: KEY },
  });
  return { code, out, err };
}

describe("audit stats --rules and query --observed", () => {
  const log = join(mkdtempSync(join(tmpdir(), "tw-stats-")), "audit.jsonl");
  beforeAll(async () => {
    // The bundled session, observed: every call runs, every decision is audited with its rule.
    const audit = await JsonlAuditSink.open({ path: log, key: KEY, durability: "write" });
    const warden = Warden.fromFile(join(EXAMPLE, "policy.yaml"), { audit, observe: true });
    await warden.ready();
    const sessions = new Set<string>();
    for (const line of readFileSync(join(EXAMPLE, "session.jsonl"), "utf8").split("\n").filter(Boolean))
      await replayStep(warden, JSON.parse(line), sessions);
    await warden.close();
  });

  it("counts how often each rule decided and names the policy's rules that never fired", async () => {
    const { code, out } = await cli(["stats", log, "--rules", "-p", join(EXAMPLE, "policy.yaml")]);
    expect(code).toBe(0);
    expect(out).toMatch(/^23 decisions/);
    // Would-be denials are counted apart from enforced ones.
    expect(out).toMatch(/deny\s+0 \(\+7 observed, not enforced\)/);
    expect(out).toMatch(/^no-untrusted-into-external-sinks\s+1\s+1\s+1\s+0\s+0\s+0\s+1$/m);
    expect(out).toMatch(/^allow:read_\*\s+4\s+0\s+5/m);
    // Nothing in the session exercises these: a reviewer should ask why they are there.
    const never = out.slice(out.indexOf("never fired"));
    expect(never).toMatch(/never fired \(\d+\):/);
    expect(never).toContain("  lethal-trifecta");
    expect(never).toContain("  fetch-rate");
    expect(never).not.toContain("big-refunds");
  });

  it("--json gives the same numbers", async () => {
    const { out } = await cli(["stats", log, "--rules", "--json"]);
    const stats = JSON.parse(out);
    expect(stats.decisions).toBe(23);
    expect(stats.verdicts.deny).toEqual({ enforced: 0, observed: 7 });
    expect(stats.rules.find((r: { rule: string }) => r.rule === "big-refunds")).toMatchObject({
      decided: 1,
      observed: 1,
    });
  });

  it("query --observed lists only the verdicts that were observed, marked as such", async () => {
    const { out } = await cli(["query", log, "--observed"]);
    const lines = out.trim().split("\n");
    expect(lines).toHaveLength(10); // 7 denials and 3 asks (send_email twice, the big refund)
    for (const line of lines) expect(line).toMatch(/ (deny|ask)\s+\(observed\) /);
  });
});

describe("audit stats on the SQLite audit a server writes", () => {
  it("reads the database sink like a log", async () => {
    const db = join(mkdtempSync(join(tmpdir(), "tw-stats-db-")), "audit.db");
    const audit = new SqliteAuditSink({ path: db, key: KEY, durability: "write" });
    const warden = Warden.fromFile(join(EXAMPLE, "policy.yaml"), { audit, observe: true });
    await warden.ready();
    await warden.decide({ tool: "delete_customer", args: { id: 1 }, session: "a" });
    await warden.decide({ tool: "search_docs", args: { query: "x" }, session: "a" });
    await warden.close();
    const { code, out } = await cli(["stats", db, "--rules", "-p", join(EXAMPLE, "policy.yaml")]);
    expect(code).toBe(0);
    expect(out).toMatch(/^2 decisions/);
    expect(out).toMatch(/^deny:delete_\*\s+1\s+1/m);
    expect(out).toContain("  lethal-trifecta");
  });
});
