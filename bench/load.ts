/**
 * Load on the decide endpoint: `toolwarden serve` in its own process (embedded SQLite state,
 * JSONL + SQLite audit with fsync per batch), autocannon on loopback against POST /v1/decide.
 * Reports decisions per second and latency percentiles, then stops the server and counts the
 * audit records in both sinks: every answered request must have its record, and both chains
 * must verify.
 *
 *   node --import tsx bench/load.ts [--duration 10] [--connections 32] [--json]
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import Database from "better-sqlite3";
import { verifySqlite } from "../src/audit/sqlite-sink.js";
import { verifyAuditLog } from "../src/audit/verify.js";

const { values } = parseArgs({
  options: {
    duration: { type: "string", default: "10" },
    connections: { type: "string", default: "32" },
    json: { type: "boolean", default: false },
  },
});
const duration = Number(values.duration);
const connections = Number(values.connections);
const root = fileURLToPath(new URL("..", import.meta.url));
const policy = join(root, "test/server/fixtures/policy.yaml");
const dir = mkdtempSync(join(tmpdir(), "tw-load-"));
const data = join(dir, "data");

/** The calls the agents make, in turn: mostly allowed reads, some denied deletes, small refunds. */
const CALLS = [
  { tool: "search_docs", args: { query: "how do refunds work for annual plans" } },
  { tool: "read_ticket", args: { id: 4711 } },
  { tool: "delete_user", args: { id: 7 } },
  { tool: "refund", args: { amount: 20, order: "ORD-000123" } },
];

function startServer(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      join(root, "src/cli/main.ts"),
      "serve",
      "-p",
      policy,
      "--port",
      "0",
      "--data",
      data,
      "--no-watch",
    ],
    {
      cwd: root,
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, TOOLWARDEN_AUDIT_KEY: "", TOOLWARDEN_AUDIT_KEY_FILE: "" },
    },
  );
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (chunk) => {
      out += chunk;
      const match = /dashboard: (http:\/\/\S+?)\/\n/.exec(out);
      if (match) resolve({ child, url: match[1] });
    });
    child.once("exit", (code) => reject(new Error(`server exited with ${code} before listening`)));
  });
}

async function post(url: string, key: string, body: unknown): Promise<any> {
  const response = await fetch(url, {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  return response.json();
}

const { child, url } = await startServer();
try {
  const admin = readFileSync(join(data, "admin.key"), "utf8").trim();
  const { key } = await post(`${url}/v1/keys`, admin, { role: "agent", name: "load", agent: "load-bot" });
  const requests = CALLS.map((call, i) => ({
    method: "POST" as const,
    path: "/v1/decide",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify({ call: { ...call, session: `load-${i}` } }),
  }));

  // Warm up the JIT and the SQLite page cache; these decisions are audited too.
  const warm = await autocannon({ url, connections, duration: 2, requests });
  const result = await autocannon({ url, connections, duration, requests });
  const answered = warm["2xx"] + result["2xx"];
  const failures =
    warm.errors + warm.timeouts + warm.non2xx + result.errors + result.timeouts + result.non2xx;

  const metrics = await (
    await fetch(`${url}/metrics`, { headers: { Authorization: `Bearer ${admin}` } })
  ).text();
  child.kill("SIGTERM");
  await new Promise((resolve) => child.once("exit", resolve));

  const auditKey = readFileSync(join(data, "audit.key"), "utf8").trim();
  const db = new Database(join(data, "audit.db"), { readonly: true });
  const sqliteDecisions = (
    db.prepare("SELECT count(*) AS n FROM audit_records WHERE kind = 'decision'").get() as { n: number }
  ).n;
  const sqliteChain = await verifySqlite(db, auditKey);
  db.close();
  const jsonl = await verifyAuditLog([join(data, "audit.jsonl")], auditKey);
  const jsonlDecisions = readFileSync(join(data, "audit.jsonl"), "utf8")
    .split("\n")
    .filter((line) => line.includes('"kind":"decision"')).length;

  const report = {
    machine: `${(await import("node:os")).cpus().length} cores, ${process.version}, loopback`,
    connections,
    durationSeconds: duration,
    decisionsPerSecond: Math.round(result.requests.average),
    latencyMs: {
      p50: result.latency.p50,
      p90: result.latency.p90,
      p99: result.latency.p99,
      max: result.latency.max,
    },
    requests: result.requests.total,
    failures,
    answered,
    audit: {
      sqliteDecisions,
      jsonlDecisions,
      // A record whose response autocannon dropped at the end of a run counts as answered here.
      lost: Math.max(0, answered - Math.min(sqliteDecisions, jsonlDecisions)),
      inFlightAtStop: Math.min(sqliteDecisions, jsonlDecisions) - answered,
      sqliteChainOk: sqliteChain.ok,
      jsonlChainOk: jsonl.ok,
    },
    serverDecisions: Number(/toolwarden_decide_duration_seconds_count (\d+)/.exec(metrics)?.[1]),
  };
  if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    const lines = [
      `POST /v1/decide, ${connections} connections, ${duration}s (${report.machine})`,
      `  decisions/s  ${report.decisionsPerSecond}`,
      `  latency ms   p50 ${report.latencyMs.p50}  p90 ${report.latencyMs.p90}  p99 ${report.latencyMs.p99}  max ${report.latencyMs.max}`,
      `  requests     ${report.requests} (+ warm-up), failures ${failures}`,
      `  audit        ${answered} answered, ${sqliteDecisions} in SQLite, ${jsonlDecisions} in JSONL, lost ${report.audit.lost} (${report.audit.inFlightAtStop} more recorded: in flight when the runs stopped); chains ${sqliteChain.ok && jsonl.ok ? "verify" : "DO NOT verify"}`,
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
  }
  process.exitCode = failures === 0 && report.audit.lost === 0 && sqliteChain.ok && jsonl.ok ? 0 : 1;
} finally {
  if (child.exitCode === null) child.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
}
