import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cli, startServe, tempDir, writePolicy } from "./procs.js";

/**
 * Issue 17 items 1-2 through the real CLI: every decision the server returns has its audit
 * record however deep the arguments, and nothing an agent sends makes the log unreadable
 * (`audit verify`, `audit tail`, `GET /v1/audit` and the next `serve` start all still work).
 */
const POLICY = (mode: string) => `version: 1
name: audit-trail
default: deny
allow: [search]
audit: { args: ${mode} }
`;

function nestedObjects(depth: number): string {
  return `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
}
function nestedArrays(depth: number): string {
  return `${"[".repeat(depth)}"x"${"]".repeat(depth)}`;
}

function records(dataDir: string): Array<Record<string, any>> {
  return readFileSync(join(dataDir, "audit.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}

describe.each(["hash", "full"])("audit: { args: %s }", (mode) => {
  const tmp = tempDir("tw-audit-trail-");
  afterAll(() => tmp.remove());
  const dataDir = join(tmp.dir, "data");
  const policy = writePolicy(tmp.dir, POLICY(mode));

  it("a decision on arguments 100,000 objects deep is denied and audited; so is one 5,000 arrays deep", async () => {
    const serve = await startServe({ policy, dataDir });
    try {
      for (const [i, args] of [nestedObjects(100_000), nestedArrays(5_000)].entries()) {
        const raw = `{"call": {"tool": "search", "session": "deep-${i}", "args": {"x": ${args}}}}`;
        const res = await serve.request("POST", "/v1/decide", { key: serve.adminKey, raw });
        expect(res.status).toBe(200);
        expect(res.body.verdict).toBe("deny");
      }
      // One ordinary call after them: the trail goes on.
      const ok = await serve.request("POST", "/v1/decide", {
        key: serve.adminKey,
        body: { call: { tool: "search", session: "after", args: { q: "fine" } } },
      });
      expect(ok.body.verdict).toBe("allow");
      const listed = await serve.request("GET", "/v1/audit?limit=10", { key: serve.adminKey });
      expect(listed.status).toBe(200);
      expect(listed.body.records.map((r: any) => r.session).filter(Boolean)).toEqual([
        "after",
        "deep-1",
        "deep-0",
      ]);
    } finally {
      expect(await serve.stop()).toBe(0);
    }
    const decisions = records(dataDir).filter((r) => r.kind === "decision");
    expect(decisions.map((r) => [r.session, r.tool, r.verdict])).toEqual([
      ["deep-0", "search", "deny"],
      ["deep-1", "search", "deny"],
      ["after", "search", "allow"],
    ]);
    for (const record of decisions) expect(record.argsHash).toMatch(/^[0-9a-f]{64}$/);
    // What is kept of the arguments is bounded, whatever was sent.
    const line = readFileSync(join(dataDir, "audit.jsonl"), "utf8").split("\n")[0];
    expect(line.length).toBeLessThan(20_000);
  }, 120_000);

  it("afterwards `audit verify` and `audit tail` read the log and `serve` starts on it again", async () => {
    const key = join(dataDir, "audit.key");
    const verify = cli(["audit", "verify", join(dataDir, "audit.jsonl"), "--key-file", key]);
    expect([verify.status, verify.stderr]).toEqual([0, ""]);
    expect(verify.stdout).toMatch(/^ok: \d+ records/);
    const tail = cli(["audit", "tail", join(dataDir, "audit.jsonl"), "-n", "5", "--json"]);
    expect([tail.status, tail.stderr]).toEqual([0, ""]);
    expect(tail.stdout.trim().split("\n").length).toBeGreaterThanOrEqual(3);
    const serve = await startServe({ policy, dataDir });
    try {
      expect((await serve.request("GET", "/health")).status).toBe(200);
    } finally {
      expect(await serve.stop()).toBe(0);
    }
  }, 120_000);
});

describe("a log written before the bounds (a record 5,000 arrays deep) stays readable", () => {
  const tmp = tempDir("tw-audit-old-");
  afterAll(() => tmp.remove());

  it("verify, tail and serve read a hand-sealed 5,000-deep record", async () => {
    // Seal the record with the library as an older version would have written it.
    const { JsonlAuditSink, resolveAuditKey } = await import("../../src/audit/index.js");
    const dataDir = join(tmp.dir, "data");
    const serve = await startServe({ policy: writePolicy(tmp.dir, POLICY("full")), dataDir });
    expect(await serve.stop()).toBe(0);
    const keyFile = join(dataDir, "audit.key");
    const key = resolveAuditKey({ keyFile });
    const sink = await JsonlAuditSink.open({ path: join(dataDir, "audit.jsonl"), key });
    await sink.append({
      kind: "decision",
      time: new Date().toISOString(),
      tool: "search",
      verdict: "deny",
      rule: null,
      reason: "old",
      findings: [],
      labels: [],
      argsHash: "0".repeat(64),
      args: { x: JSON.parse(nestedArrays(5_000)) },
    } as never);
    await sink.close();
    const verify = cli(["audit", "verify", join(dataDir, "audit.jsonl"), "--key-file", keyFile]);
    expect([verify.status, verify.stderr]).toEqual([0, ""]);
    for (const json of [[], ["--json"]]) {
      const tail = cli(["audit", "tail", join(dataDir, "audit.jsonl"), "-n", "1", ...json]);
      expect([tail.status, tail.stderr]).toEqual([0, ""]);
    }
    const again = await startServe({ policy: join(tmp.dir, "policy.yaml"), dataDir });
    try {
      expect((await again.request("GET", "/health")).status).toBe(200);
      const listed = await again.request("GET", "/v1/audit?limit=5", { key: again.adminKey });
      expect(listed.status).toBe(200);
      expect(listed.body.records.map((r: { reason?: string }) => r.reason)).toContain("old");
    } finally {
      expect(await again.stop()).toBe(0);
    }
  }, 120_000);
});
