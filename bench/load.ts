/**
 * Load on the decide endpoint: `toolwarden serve` in its own process (embedded SQLite state,
 * JSONL + SQLite audit with fsync per batch), autocannon on loopback against POST /v1/decide.
 * Reports decisions per second and latency percentiles, then stops the server and counts the
 * audit records in both sinks: every answered request must have its record, and both chains
 * must verify. In the same run, a bare `node:http` server (its own process, returning a fixed
 * decision as JSON) takes the same load: the ratio of the two is the cost of everything serve does.
 * The servers take the load in one-second turns, in rotation, `--duration` turns each, so a
 * machine whose speed drifts slows them alike.
 * Also in the same run, in turns with one request at a time to each server: one small append +
 * fdatasync on the data directory's disk (the floor of a durable decision's latency at one
 * connection).
 *
 *   node --import tsx bench/load.ts [--duration 10] [--connections 1,8,32,128] [--durability fsync,write]
 *     [--cli dist/src/cli/main.js] [--node-args="--cpu-prof --cpu-prof-dir=/tmp/prof"]
 *     [--serve-args="--store memory:"] [--json]
 *
 * `--durability` takes a list: one server per durability, each taking its turns after the bare
 * server's at each connection count. `--cli` is the built CLI to run (default this checkout's
 * `dist/`, so build first; a `.ts` file runs through tsx); `--node-args` go to serve's node, and
 * `--serve-args` to `serve` itself (to measure what a setting costs: another store, say).
 */
import { type ChildProcess, spawn } from "node:child_process";
import {
  closeSync,
  existsSync,
  fdatasyncSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeSync,
} from "node:fs";
import { Agent, request } from "node:http";
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
    cli: { type: "string" },
    "node-args": { type: "string", default: "" },
    "serve-args": { type: "string", default: "" },
    json: { type: "boolean", default: false },
  },
});
const duration = Number(values.duration);
const connectionCounts = values.connections.split(",").map(Number);
const durabilities = values.durability.split(",");
for (const d of durabilities) if (d !== "fsync" && d !== "write") throw new Error(`--durability: \`${d}\`?`);
const root = fileURLToPath(new URL("..", import.meta.url));
const cli = values.cli ?? join(root, "dist/src/cli/main.js");
if (!existsSync(cli)) throw new Error(`no CLI at ${cli}: run \`npm run build\` or pass --cli`);
const nodeArgs = values["node-args"].split(" ").filter(Boolean);
const serveArgs = values["serve-args"].split(" ").filter(Boolean);
const policy = join(root, "test/server/fixtures/policy.yaml");
const dir = mkdtempSync(join(tmpdir(), "tw-load-"));

/** Rounds of the one-request-at-a-time probe (each: 20 fdatasyncs, then SEQUENTIAL_REQUESTS to every server). */
const SEQUENTIAL_TURNS = 10;
const SEQUENTIAL_REQUESTS = 200;

/** The calls the agents make, in turn: mostly allowed reads, some denied deletes, small refunds. */
const CALLS = [
  { tool: "search_docs", args: { query: "how do refunds work for annual plans" } },
  { tool: "read_ticket", args: { id: 4711 } },
  { tool: "delete_user", args: { id: 7 } },
  { tool: "refund", args: { amount: 20, order: "ORD-000123" } },
];

function startServer(durability: string, data: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs,
      ...(cli.endsWith(".ts") ? ["--import", "tsx"] : []),
      cli,
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
      ...serveArgs,
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

/** `n` appends of one small record, each followed by fdatasync, on `dir`'s disk: each one's time (ms). */
function fdatasyncTimes(dir: string, n: number): number[] {
  const fd = openSync(join(dir, "fdatasync-probe"), "a");
  const line = Buffer.from(`${"x".repeat(300)}\n`);
  const times: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const started = performance.now();
      writeSync(fd, line);
      fdatasyncSync(fd);
      times.push(performance.now() - started);
    }
  } finally {
    closeSync(fd);
  }
  return times;
}

/**
 * One request at a time over one kept-alive connection, to the microsecond (autocannon reports
 * whole milliseconds): each one's time (ms), `n` measured after `n / 10` unmeasured.
 */
async function sequentialTimes(url: string, requests: autocannon.Request[], n: number): Promise<number[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const times: number[] = [];
  try {
    for (let i = -Math.floor(n / 10); i < n; i++) {
      const r = requests[(i + n) % requests.length];
      const started = performance.now();
      await new Promise<void>((resolve, reject) => {
        const req = request(`${url}${r.path}`, { method: r.method, headers: r.headers, agent }, (res) => {
          res.resume();
          res.on("end", resolve);
        });
        req.on("error", reject);
        req.end(r.body);
      });
      if (i >= 0) times.push(performance.now() - started);
    }
  } finally {
    agent.destroy();
  }
  return times;
}

/** The p50 and p90 of `times` (ms, to the µs). */
function percentiles(times: number[]): { p50: number; p90: number } {
  const sorted = [...times].sort((a, b) => a - b);
  const ms = (t: number) => Number(t.toFixed(3));
  return { p50: ms(sorted[sorted.length >> 1]), p90: ms(sorted[Math.floor(sorted.length * 0.9)]) };
}

/** CPU time (user + system) the process has used so far, in ms (Linux `/proc`; NaN elsewhere). */
function cpuMs(child: ChildProcess): number {
  try {
    const fields = readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1].split(" ");
    // utime and stime, in clock ticks (100 per second on Linux).
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return Number.NaN;
  }
}

/** One server's one-second turn: autocannon's result and the CPU time the server used in it (ms). */
interface Turn {
  result: autocannon.Result;
  cpuMs: number;
}

/** A server's figures over its turns at one connection count. */
interface Measured {
  /** Requests answered per second, over all its turns. */
  rps: number;
  /** The median of the turns' latency percentiles (ms). */
  p50: number;
  p99: number;
  /** CPU time per answered request (µs): less disturbed by a busy machine than req/s. */
  cpuUs: number;
  ok: number;
  failures: number;
}

function combine(turns: Turn[]): Measured {
  const ok = turns.reduce((sum, t) => sum + t.result["2xx"], 0);
  const seconds = turns.reduce((sum, t) => sum + t.result.duration, 0);
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1];
  return {
    rps: ok / Math.max(seconds, 1e-9),
    p50: median(turns.map((t) => t.result.latency.p50)),
    p99: median(turns.map((t) => t.result.latency.p99)),
    cpuUs: Math.round((turns.reduce((sum, t) => sum + t.cpuMs, 0) * 1000) / Math.max(1, ok)),
    ok,
    failures: turns.reduce((sum, t) => sum + t.result.errors + t.result.timeouts + t.result.non2xx, 0),
  };
}

interface Serve {
  durability: string;
  data: string;
  child: ChildProcess;
  url: string;
  requests: autocannon.Request[];
  admin: string;
  answered: number;
  failures: number;
  results: Map<number, Measured>;
  sequential?: { p50: number; p90: number };
}

const servers: Serve[] = [];
const bare = await startBare();
try {
  for (const durability of durabilities) {
    const data = join(dir, `data-${durability}`);
    const { child, url } = await startServer(durability, data);
    const admin = readFileSync(join(data, "admin.key"), "utf8").trim();
    const { key } = await post(`${url}/v1/keys`, admin, { role: "agent", name: "load", agent: "load-bot" });
    const requests = CALLS.map((call, i) => ({
      method: "POST" as const,
      path: "/v1/decide",
      headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
      body: JSON.stringify({ call: { ...call, session: `load-${i}` } }),
    }));
    servers.push({
      durability,
      data,
      child,
      url,
      requests,
      admin,
      answered: 0,
      failures: 0,
      results: new Map(),
    });
  }

  // Per connection count: each server warmed up (serve's warm-up decisions are audited too), then
  // one-second turns, bare and each serve in rotation, `duration` turns each: a VM whose speed
  // drifts from one second to the next slows all of them alike, so the ratio holds still.
  const bareResults = new Map<number, Measured>();
  for (const connections of connectionCounts) {
    const targets: Array<{
      url: string;
      child: ChildProcess;
      requests: autocannon.Request[];
      serve?: Serve;
    }> = [
      { url: bare.url, child: bare.child, requests: servers[0].requests },
      ...servers.map((serve) => ({ url: serve.url, child: serve.child, requests: serve.requests, serve })),
    ];
    const turns = targets.map(() => [] as Turn[]);
    for (const { url, requests, serve } of targets) {
      const warm = await autocannon({ url, requests, connections, duration: serve ? 2 : 1 });
      if (serve) {
        serve.answered += warm["2xx"];
        serve.failures += warm.errors + warm.timeouts + warm.non2xx;
      }
    }
    for (let turn = 0; turn < duration; turn++) {
      for (const [i, target] of targets.entries()) {
        const cpu = cpuMs(target.child);
        const result = await autocannon({
          url: target.url,
          requests: target.requests,
          connections,
          duration: 1,
        });
        turns[i].push({ result, cpuMs: cpuMs(target.child) - cpu });
      }
    }
    bareResults.set(connections, combine(turns[0]));
    for (const [i, serve] of servers.entries()) {
      const measured = combine(turns[i + 1]);
      serve.answered += measured.ok;
      serve.failures += measured.failures;
      serve.results.set(connections, measured);
    }
    process.stderr.write(`load: ${connections} connections measured\n`);
  }
  // One request at a time, to the microsecond, in turns as above: the fdatasync floor (the disk is
  // shared: measured close to its use), the bare server, then each serve, SEQUENTIAL_TURNS times.
  const fsyncTimes: number[] = [];
  const bareTimes: number[] = [];
  const serveTimes = servers.map(() => [] as number[]);
  for (let turn = 0; turn < SEQUENTIAL_TURNS; turn++) {
    fsyncTimes.push(...fdatasyncTimes(dir, 20));
    bareTimes.push(...(await sequentialTimes(bare.url, servers[0].requests, SEQUENTIAL_REQUESTS)));
    for (const [i, serve] of servers.entries()) {
      serveTimes[i].push(...(await sequentialTimes(serve.url, serve.requests, SEQUENTIAL_REQUESTS)));
      // The measured requests and the unmeasured tenth before them.
      serve.answered += SEQUENTIAL_REQUESTS + Math.floor(SEQUENTIAL_REQUESTS / 10);
    }
  }
  const fsync = percentiles(fsyncTimes);
  const bareSequential = percentiles(bareTimes);
  for (const [i, serve] of servers.entries()) serve.sequential = percentiles(serveTimes[i]);

  const auditKey = (serve: Serve) => readFileSync(join(serve.data, "audit.key"), "utf8").trim();
  const reports = [];
  for (const serve of servers) {
    const metrics = await (
      await fetch(`${serve.url}/metrics`, { headers: { Authorization: `Bearer ${serve.admin}` } })
    ).text();
    serve.child.kill("SIGTERM");
    await new Promise((resolve) => serve.child.once("exit", resolve));
    const db = new Database(join(serve.data, "audit.db"), { readonly: true });
    const sqliteDecisions = (
      db.prepare("SELECT count(*) AS n FROM audit_records WHERE kind = 'decision'").get() as { n: number }
    ).n;
    const sqliteChain = await verifySqlite(db, auditKey(serve));
    db.close();
    const jsonl = await verifyAuditLog([join(serve.data, "audit.jsonl")], auditKey(serve));
    const jsonlDecisions = readFileSync(join(serve.data, "audit.jsonl"), "utf8")
      .split("\n")
      .filter((line) => line.includes('"kind":"decision"')).length;
    reports.push({
      durability: serve.durability,
      failures: serve.failures,
      answered: serve.answered,
      audit: {
        sqliteDecisions,
        jsonlDecisions,
        // A record whose response autocannon dropped at the end of a run counts as answered here.
        lost: Math.max(0, serve.answered - Math.min(sqliteDecisions, jsonlDecisions)),
        inFlightAtStop: Math.min(sqliteDecisions, jsonlDecisions) - serve.answered,
        sqliteChainOk: sqliteChain.ok,
        jsonlChainOk: jsonl.ok,
      },
      sequentialMs: serve.sequential,
      serverDecisions: Number(/toolwarden_decide_duration_seconds_count (\d+)/.exec(metrics)?.[1]),
      vsBare: connectionCounts.map((connections) => {
        const b = bareResults.get(connections)!;
        const r = serve.results.get(connections)!;
        return {
          connections,
          bareRequestsPerSecond: Math.round(b.rps),
          serveDecisionsPerSecond: Math.round(r.rps),
          ratio: r.rps / b.rps,
          bareP50Ms: b.p50,
          serveP50Ms: r.p50,
          serveP99Ms: r.p99,
          bareCpuUs: b.cpuUs,
          serveCpuUs: r.cpuUs,
        };
      }),
    });
  }
  bare.child.kill("SIGTERM");

  const { cpus, loadavg } = await import("node:os");
  const report = {
    machine: `${cpus().length} cores, ${process.version}, loopback`,
    loadAverage: loadavg().map((n) => Number(n.toFixed(2))),
    durationSeconds: duration,
    fdatasyncMs: { p50: Number(fsync.p50.toFixed(3)), p90: Number(fsync.p90.toFixed(3)) },
    bareSequentialMs: bareSequential,
    servers: reports,
  };
  if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    const lines = [
      `POST /v1/decide, ${duration} one-second turns per server, in rotation (${report.machine}; load average ${report.loadAverage.join(" ")})`,
      `  one append + fdatasync on the data disk: p50 ${report.fdatasyncMs.p50} ms, p90 ${report.fdatasyncMs.p90} ms`,
      `  one request at a time (one connection, to the µs): bare p50 ${bareSequential.p50} ms, p90 ${bareSequential.p90} ms`,
      ...reports.map(
        (r) =>
          `    serve (${r.durability}) p50 ${r.sequentialMs!.p50} ms, p90 ${r.sequentialMs!.p90} ms: p50 - one fdatasync = ${(r.sequentialMs!.p50 - report.fdatasyncMs.p50).toFixed(3)} ms (target: at most 0.5)`,
      ),
    ];
    for (const r of reports) {
      lines.push(
        "",
        `  audit durability ${r.durability}, vs a bare node:http server in the same run`,
        "  connections  bare req/s  serve decisions/s  ratio  bare p50 ms  serve p50 ms  serve p99 ms  CPU µs/request bare  serve",
        ...r.vsBare.map(
          (v) =>
            `  ${String(v.connections).padStart(11)}  ${String(v.bareRequestsPerSecond).padStart(10)}  ${String(v.serveDecisionsPerSecond).padStart(17)}  ${`${(v.ratio * 100).toFixed(1)}%`.padStart(5)}  ${String(v.bareP50Ms).padStart(11)}  ${String(v.serveP50Ms).padStart(12)}  ${String(v.serveP99Ms).padStart(12)}  ${String(v.bareCpuUs).padStart(19)}  ${String(v.serveCpuUs).padStart(5)}`,
        ),
        `  failures ${r.failures}; audit: ${r.answered} answered, ${r.audit.sqliteDecisions} in SQLite, ${r.audit.jsonlDecisions} in JSONL, lost ${r.audit.lost} (${r.audit.inFlightAtStop} more recorded: in flight when the runs stopped); chains ${r.audit.sqliteChainOk && r.audit.jsonlChainOk ? "verify" : "DO NOT verify"}`,
      );
    }
    process.stdout.write(`${lines.join("\n")}\n`);
  }
  process.exitCode = reports.every(
    (r) => r.failures === 0 && r.audit.lost === 0 && r.audit.sqliteChainOk && r.audit.jsonlChainOk,
  )
    ? 0
    : 1;
} finally {
  for (const serve of servers) if (serve.child.exitCode === null) serve.child.kill("SIGKILL");
  if (bare.child.exitCode === null) bare.child.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
}
