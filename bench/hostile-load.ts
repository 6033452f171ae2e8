/**
 * The load and fault figures of issue 17, re-measured against the real CLI (`serve` in its own
 * process) and a private redis-server this script starts and kills by PID. Bounded: every phase
 * runs for a fixed time or count.
 *
 *   node --import tsx bench/hostile-load.ts [--cli dist/src/cli/main.js] [--only store,policy,limits,events] [--json]
 *
 * - store: one decision with Redis killed (time to the answer and its verdict); a 5 s outage under
 *   32 connections (answers, allows after the outage began, slowest answer); Redis frozen (SIGSTOP).
 * - policy: how long /health waits while a 10,000-rule policy is validated and uploaded.
 * - limits: decide latency with 10,000 limits in the policy (one per tool).
 * - events: decisions per second and p50 at 32 connections with 0 and 200 event stream subscribers.
 */
import { randomBytes } from "node:crypto";
import { get } from "node:http";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import { type ServeProcess, startRedis, startServe, tempDir, writePolicy } from "../test/hostile/procs.js";

const { values } = parseArgs({
  options: {
    cli: { type: "string" },
    only: { type: "string" },
    json: { type: "boolean", default: false },
  },
});
if (values.cli) process.env.TW_CLI = values.cli;
const only = new Set((values.only ?? "store,policy,limits,events").split(","));
const results: Record<string, unknown> = {};
const say = (line: string) => process.stderr.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function agentKey(serve: ServeProcess): Promise<string> {
  const res = await serve.request("POST", "/v1/keys", {
    key: serve.adminKey,
    body: { role: "agent", name: "bench", agent: "bench" },
  });
  return res.body.key;
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const value = await fn();
  return [value, performance.now() - t0];
}

async function load(
  serve: ServeProcess,
  key: string,
  seconds: number,
  body = { call: { tool: "search", args: { q: "x" } } },
): Promise<{ rps: number; p50: number; p99: number; total: number; non2xx: number }> {
  const result = await autocannon({
    url: `${serve.url}/v1/decide`,
    method: "POST",
    connections: 32,
    duration: seconds,
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify(body),
  });
  return {
    rps: Math.round(result.requests.average),
    p50: result.latency.p50,
    p99: result.latency.p99,
    total: result.requests.total,
    non2xx: result.non2xx,
  };
}

async function storePhase(): Promise<void> {
  const tmp = tempDir("tw-bench-store-");
  const redis = await startRedis();
  const policy = writePolicy(
    tmp.dir,
    "version: 1\nname: b\ndefault: deny\nallow: [search]\nlimits:\n  - { name: r, when: { tool: search }, rate: 100000000/minute, per: agent }\n",
  );
  const serve = await startServe({
    policy,
    dataDir: join(tmp.dir, "data"),
    args: ["--store", `${redis.url}?prefix=b${randomBytes(3).toString("hex")}:`],
  });
  try {
    const key = await agentKey(serve);
    const decide = () =>
      serve.request("POST", "/v1/decide", { key, body: { call: { tool: "search", args: { q: "x" } } } });
    await decide();
    await redis.kill();
    const [killed, killedMs] = await timed(decide);
    const health = await serve.request("GET", "/health");
    results.redisKilled = {
      ms: Math.round(killedMs),
      verdict: killed.body.verdict,
      rule: killed.body.rule,
      health: health.status,
    };
    say(
      `redis killed: ${killed.body.verdict} (${killed.body.rule}) in ${Math.round(killedMs)} ms; /health ${health.status}`,
    );
    await redis.restart();
    for (let i = 0; i < 200 && (await decide()).body.verdict !== "allow"; i++) await sleep(100);

    // A 5 s outage under load: which answers came back allow after the outage began?
    let outageStart = Number.POSITIVE_INFINITY;
    let outageEnd = Number.POSITIVE_INFINITY;
    const answers: Array<{ sent: number; done: number; verdict: string }> = [];
    let stop = false;
    const workers = Array.from({ length: 32 }, async () => {
      while (!stop) {
        const sent = Date.now();
        const res = await decide().catch(() => ({ body: { verdict: "error" } }));
        answers.push({ sent, done: Date.now(), verdict: res.body.verdict });
      }
    });
    await sleep(1000);
    outageStart = Date.now();
    await redis.kill();
    await sleep(5000);
    await redis.restart();
    outageEnd = Date.now();
    await sleep(3000);
    stop = true;
    await Promise.all(workers);
    const during = answers.filter((a) => a.sent >= outageStart && a.sent < outageEnd);
    const lateAllows = answers.filter(
      (a) => a.sent < outageEnd && a.done > outageStart && a.verdict === "allow" && a.sent >= outageStart,
    );
    const slowest = Math.max(...answers.filter((a) => a.done > outageStart).map((a) => a.done - a.sent));
    results.outage = {
      sentDuring: during.length,
      deniedDuring: during.filter((a) => a.verdict === "deny").length,
      allowedAfterOutageBegan: lateAllows.length,
      slowestMs: slowest,
    };
    say(
      `5 s outage at 32 conns: ${during.length} sent during it, ${results.outage && (results.outage as { deniedDuring: number }).deniedDuring} denied, ${lateAllows.length} allowed, slowest answer ${slowest} ms`,
    );

    for (let i = 0; i < 200 && (await decide()).body.verdict !== "allow"; i++) await sleep(100);
    redis.freeze();
    const [frozen, frozenMs] = await timed(decide);
    redis.thaw();
    results.redisFrozen = { ms: Math.round(frozenMs), verdict: frozen.body.verdict, rule: frozen.body.rule };
    say(`redis frozen: ${frozen.body.verdict} (${frozen.body.rule}) in ${Math.round(frozenMs)} ms`);
    results.unhandledErrorEvents = (serve.stderr().match(/Unhandled error event/g) ?? []).length;
  } finally {
    redis.thaw();
    await serve.stop(true);
    await redis.kill();
    tmp.remove();
  }
}

/** GET /health on a fresh connection (no client-side pooling to queue behind the upload). */
function probe(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = get({ host: "127.0.0.1", port, path: "/health", agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
  });
}

function bigPolicy(rules: number): string {
  const lines = Array.from(
    { length: rules },
    (_, i) => `  - { name: r${i}, when: { tool: "t${i}", args.amount: { gt: ${i} } }, verdict: deny }`,
  );
  return `version: 1\nname: big\ndefault: allow\nrules:\n${lines.join("\n")}\n`;
}

async function policyPhase(): Promise<void> {
  const tmp = tempDir("tw-bench-policy-");
  const serve = await startServe({
    policy: writePolicy(tmp.dir, "version: 1\nname: small\ndefault: deny\nallow: [search]\n"),
    dataDir: join(tmp.dir, "data"),
  });
  try {
    for (const path of ["/v1/policy/validate", "/v1/policy/versions"]) {
      let done = false;
      const source = bigPolicy(10_000);
      const upload = timed(() =>
        serve.request("POST", path, { key: serve.adminKey, body: { source } }),
      ).finally(() => {
        done = true;
      });
      let worst = 0;
      let probes = 0;
      while (!done) {
        const [, ms] = await timed(() => probe(serve.port));
        worst = Math.max(worst, ms);
        probes++;
        await sleep(20);
      }
      say(`  (${probes} /health probes while it ran)`);
      const [res, ms] = await upload;
      results[`upload ${path}`] = {
        status: res.status,
        ms: Math.round(ms),
        worstHealthMs: Math.round(worst),
      };
      say(
        `${path} 10,000 rules: ${res.status} in ${Math.round(ms)} ms; slowest /health meanwhile ${Math.round(worst)} ms`,
      );
    }
  } finally {
    await serve.stop(true);
    tmp.remove();
  }
}

async function limitsPhase(): Promise<void> {
  const tmp = tempDir("tw-bench-limits-");
  const limits = Array.from(
    { length: 10_000 },
    (_, i) => `  - { name: l${i}, when: { tool: "t${i}" }, rate: 1000000/minute, per: agent }`,
  );
  const serve = await startServe({
    policy: writePolicy(tmp.dir, `version: 1\nname: limits\ndefault: allow\nlimits:\n${limits.join("\n")}\n`),
    dataDir: join(tmp.dir, "data"),
  });
  try {
    const times: number[] = [];
    for (let i = 0; i < 200; i++) {
      const [, ms] = await timed(() =>
        serve.request("POST", "/v1/decide", {
          key: serve.adminKey,
          body: { call: { tool: `t${i % 50}`, args: { i } } },
        }),
      );
      times.push(ms);
    }
    times.sort((a, b) => a - b);
    results.limits10k = { p50: +times[100]!.toFixed(1), p99: +times[198]!.toFixed(1) };
    say(
      `10,000 limits: decide p50 ${times[100]!.toFixed(1)} ms, p99 ${times[198]!.toFixed(1)} ms (200 sequential)`,
    );
  } finally {
    await serve.stop(true);
    tmp.remove();
  }
}

async function eventsPhase(): Promise<void> {
  const tmp = tempDir("tw-bench-events-");
  const serve = await startServe({
    policy: writePolicy(tmp.dir, "version: 1\nname: e\ndefault: deny\nallow: [search]\n"),
    dataDir: join(tmp.dir, "data"),
  });
  try {
    const key = await agentKey(serve);
    const none = await load(serve, key, 5);
    say(`0 subscribers: ${none.rps}/s, p50 ${none.p50} ms, p99 ${none.p99} ms`);
    // Raw sockets that read and discard: the subscribers cost the bench process next to nothing.
    const readers: Socket[] = [];
    let received = 0;
    for (let i = 0; i < 200; i++) {
      const socket = connect(serve.port, "127.0.0.1");
      socket.on("error", () => {});
      socket.on("data", (chunk: Buffer) => {
        received += chunk.length;
      });
      socket.write(
        `GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${serve.adminKey}\r\n\r\n`,
      );
      readers.push(socket);
    }
    await sleep(500);
    const many = await load(serve, key, 5);
    say(`200 subscribers: ${many.rps}/s, p50 ${many.p50} ms, p99 ${many.p99} ms`);
    const metrics = (await serve.request("GET", "/metrics", { key: serve.adminKey })).text;
    const dropped = Number(/^toolwarden_event_clients_dropped (\d+)/m.exec(metrics)?.[1] ?? "NaN");
    results.events = { none, many, dropped, receivedMB: +(received / 1e6).toFixed(1) };
    say(`subscribers received ${(received / 1e6).toFixed(1)} MB, dropped ${dropped}`);
    for (const socket of readers) socket.destroy();
  } finally {
    await serve.stop(true);
    tmp.remove();
  }
}

if (only.has("store")) await storePhase();
if (only.has("policy")) await policyPhase();
if (only.has("limits")) await limitsPhase();
if (only.has("events")) await eventsPhase();
if (values.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
