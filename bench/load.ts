/**
 * Load on the decide endpoint: `toolwarden serve` in its own process (embedded SQLite state,
 * JSONL + SQLite audit with fsync per batch), autocannon on loopback against POST /v1/decide.
 * Reports decisions per second and latency percentiles, then stops the server and counts the
 * audit records in both sinks: every answered request must have its record, and both chains
 * must verify. In the same run, a bare `node:http` server (its own process, returning a fixed
 * decision as JSON) takes the same load: the ratio of the two is the cost of everything serve does.
 *
 *   node --import tsx bench/load.ts [--duration 10] [--connections 1,8,32,128] [--durability fsync|write] [--json]
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
    durability: { type: "string", default: "fsync" },
    json: { type: "boolean", default: false },
  },
});
const duration = Number(values.duration);
const connectionCounts = values.connections.split(",").map(Number);
const durability = values.durability;
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
      "--audit-durability",
      durability,
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

/** A bare node:http server in its own process that answers every request with a fixed decision. */
function startBare(): Promise<{ child: ChildProcess; url: string }> {
  const code = `
    const body = JSON.stringify({ verdict: "allow", rule: "allow-reads", reason: "allowed", findings: [], labels: [] });
    require("node:http").createServer((req, res) => {
      req.resume();
      req.on("end", () => { res.writeHead(200, { "Content-Type": "application/json" }); res.end(body); });
    }).listen(0, "127.0.0.1", function () { console.log("http://127.0.0.1:" + this.address().port); });`;
  const child = spawn(process.execPath, ["-e", code], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    child.stdout?.once("data", (chunk) => resolve({ child, url: String(chunk).trim() }));
    child.once("exit", (code) => reject(new Error(`bare server exited with ${code}`)));
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
const bare = await startBare();
try {
  const admin = readFileSync(join(data, "admin.key"), "utf8").trim();
  const { key } = await post(`${url}/v1/keys`, admin, { role: "agent", name: "load", agent: "load-bot" });
  const requests = CALLS.map((call, i) => ({
    method: "POST" as const,
    path: "/v1/decide",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify({ call: { ...call, session: `load-${i}` } }),
  }));

  // Per connection count: the bare server, then serve, each warmed up first (serve's warm-up
  // decisions are audited too).
  const rows: Array<{
    connections: number;
    bare: autocannon.Result;
    serve: autocannon.Result;
  }> = [];
  let answered = 0;
  let failures = 0;
  for (const connections of connectionCounts) {
    const bareRequests = requests.map(({ path: _p, ...r }) => ({ ...r, path: "/v1/decide" }));
    await autocannon({ url: bare.url, connections, duration: 1, requests: bareRequests });
    const bareResult = await autocannon({ url: bare.url, connections, duration, requests: bareRequests });
    const warm = await autocannon({ url, connections, duration: 2, requests });
    const result = await autocannon({ url, connections, duration, requests });
    answered += warm["2xx"] + result["2xx"];
    failures += warm.errors + warm.timeouts + warm.non2xx + result.errors + result.timeouts + result.non2xx;
    rows.push({ connections, bare: bareResult, serve: result });
    process.stderr.write(`load: ${connections} connections measured\n`);
  }
  const result = rows.at(-1)!.serve;
  const connections = rows.at(-1)!.connections;

  const metrics = await (
    await fetch(`${url}/metrics`, { headers: { Authorization: `Bearer ${admin}` } })
  ).text();
  child.kill("SIGTERM");
  await new Promise((resolve) => child.once("exit", resolve));
  bare.child.kill("SIGTERM");

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
    durability,
    vsBare: rows.map((row) => ({
      connections: row.connections,
      bareRequestsPerSecond: Math.round(row.bare.requests.average),
      serveDecisionsPerSecond: Math.round(row.serve.requests.average),
      ratio: row.serve.requests.average / row.bare.requests.average,
      bareP50Ms: row.bare.latency.p50,
      serveP50Ms: row.serve.latency.p50,
    })),
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
    lines.push(
      "",
      `  vs a bare node:http server in the same run (audit durability: ${durability})`,
      "  connections  bare req/s  serve decisions/s  ratio  bare p50 ms  serve p50 ms",
      ...report.vsBare.map(
        (r) =>
          `  ${String(r.connections).padStart(11)}  ${String(r.bareRequestsPerSecond).padStart(10)}  ${String(r.serveDecisionsPerSecond).padStart(17)}  ${`${(r.ratio * 100).toFixed(1)}%`.padStart(5)}  ${String(r.bareP50Ms).padStart(11)}  ${String(r.serveP50Ms).padStart(12)}`,
      ),
    );
    process.stdout.write(`${lines.join("\n")}\n`);
  }
  process.exitCode = failures === 0 && report.audit.lost === 0 && sqliteChain.ok && jsonl.ok ? 0 : 1;
} finally {
  if (child.exitCode === null) child.kill("SIGKILL");
  if (bare.child.exitCode === null) bare.child.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
}
