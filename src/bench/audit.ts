import { createHash, createHmac, hash, randomBytes } from "node:crypto";
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AuditEvent, type AuditSink, type Durability, JsonlAuditSink } from "../audit/index.js";
import { Warden } from "../gateway/index.js";
import { compilePolicyObject } from "../policy/index.js";
import { wanted } from "./harness.js";
import { syntheticPolicy } from "./scenarios.js";

/** Records per second that one audit sink sustained. */
export interface AuditThroughput {
  name: string;
  sink: "jsonl" | "sqlite" | "postgres";
  durability: Durability;
  /** Appends in flight at once (concurrent gateway calls). */
  concurrency: number;
  records: number;
  seconds: number;
  recordsPerSecond: number;
  /** CPU time this process spent per record (user + system), in µs: steadier than the rate on a busy machine. */
  cpuUsPerRecord: number;
  /** Why the scenario did not run (e.g. no PostgreSQL server). */
  skipped?: string;
}

export interface AuditThroughputOptions {
  /** Records per scenario. Default 20,000. */
  records?: number;
  /** Appends in flight. Default 256. */
  concurrency?: number;
  /** PostgreSQL to measure against (a fresh schema is created and dropped); `false` to skip. Default 127.0.0.1:5432 db `test`. */
  postgres?: false | { host?: string; port?: number; user?: string; password?: string; database?: string };
}

const KEY = randomBytes(32);

function event(i: number): AuditEvent {
  return {
    kind: "decision",
    time: new Date().toISOString(),
    session: `session-${i % 64}`,
    agent: `agent-${i % 8}`,
    tool: i % 5 === 0 ? "send_email" : "read_file",
    verdict: i % 5 === 0 ? "deny" : "allow",
    rule: i % 5 === 0 ? "no-untrusted-into-external-sinks" : "allow-reads",
    reason: i % 5 === 0 ? "Untrusted content may not reach an external sink." : "allowed by rule",
    findings:
      i % 5 === 0 ? [{ code: "flow.untrusted", message: "untrusted content in body", arg: "body" }] : [],
    labels: i % 5 === 0 ? ["untrusted"] : [],
    argsHash: "3f".repeat(32),
    policy: "support-bot",
  };
}

/** Appends `records` events with `concurrency` in flight; returns seconds from first append to last acknowledgement. */
async function drive(sink: AuditSink, records: number, concurrency: number): Promise<number> {
  let next = 0;
  const start = process.hrtime.bigint();
  const worker = async () => {
    while (next < records) await sink.append(event(next++));
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, records) }, worker));
  await sink.flush();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/**
 * Measures audit write throughput: JSONL with batched fdatasync (and with plain writes), SQLite in
 * WAL mode with synchronous=FULL, and PostgreSQL with durable commits, each signing a checkpoint per batch.
 * Also JSONL fsync with one call at a time, which is the per-call latency a lone agent sees.
 */
export async function measureAuditThroughput(
  options: AuditThroughputOptions = {},
): Promise<AuditThroughput[]> {
  const records = options.records ?? 20_000;
  const concurrency = options.concurrency ?? 256;
  const dir = await mkdtemp(join(tmpdir(), "tw-bench-audit-"));
  const results: AuditThroughput[] = [];
  let cpu = process.cpuUsage();
  const record = (
    name: string,
    sink: AuditThroughput["sink"],
    durability: Durability,
    n: number,
    c: number,
    seconds: number,
  ) =>
    results.push({
      name,
      sink,
      durability,
      concurrency: c,
      records: n,
      seconds,
      recordsPerSecond: n / seconds,
      cpuUsPerRecord: cpuSince(cpu) / n,
    });
  try {
    for (const durability of ["fsync", "write"] as const) {
      cpu = process.cpuUsage();
      const seconds = await floor(join(dir, `floor-${durability}.jsonl`), records, durability, "record");
      record(`floor ${durability}, batches of 1000`, "jsonl", durability, records, 1, seconds);
    }
    for (const durability of ["fsync", "write"] as const) {
      cpu = process.cpuUsage();
      const seconds = await floor(join(dir, `floor-cp-${durability}.jsonl`), records, durability, "batch");
      record(`floor ${durability}, checkpoint per batch of 1000`, "jsonl", durability, records, 1, seconds);
    }
    for (const durability of ["fsync", "write"] as const) {
      const sink = await JsonlAuditSink.open({
        path: join(dir, `${durability}.jsonl`),
        key: KEY,
        durability,
      });
      cpu = process.cpuUsage();
      const seconds = await drive(sink, records, concurrency);
      await sink.close();
      record(
        `jsonl ${durability}, ${concurrency} in flight`,
        "jsonl",
        durability,
        records,
        concurrency,
        seconds,
      );
    }
    {
      const n = Math.min(records, 1000);
      const sink = await JsonlAuditSink.open({ path: join(dir, "serial.jsonl"), key: KEY });
      cpu = process.cpuUsage();
      const seconds = await drive(sink, n, 1);
      await sink.close();
      record("jsonl fsync, one at a time", "jsonl", "fsync", n, 1, seconds);
    }
    {
      const { SqliteAuditSink } = await import("../audit/sqlite-sink.js");
      const sink = new SqliteAuditSink({ path: join(dir, "audit.db"), key: KEY });
      cpu = process.cpuUsage();
      const seconds = await drive(sink, records, concurrency);
      await sink.close();
      record(`sqlite fsync, ${concurrency} in flight`, "sqlite", "fsync", records, concurrency, seconds);
    }
    for (const durability of ["fsync", "write"] as const) {
      // What a library user feels: warden.decide on a 100-rule policy with the JSONL audit,
      // concurrently, each decision answered once its record is written (and synced).
      const sink = await JsonlAuditSink.open({
        path: join(dir, `decide-${durability}.jsonl`),
        key: KEY,
        durability,
      });
      const warden = new Warden(compilePolicyObject(syntheticPolicy(100)), { audit: sink });
      const calls = ["refund policy", "shipping times", "warranty", "returns"].map((query, i) => ({
        tool: "search_docs",
        args: { query },
        session: `bench-${i}`,
      }));
      let next = 0;
      cpu = process.cpuUsage();
      const start = process.hrtime.bigint();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < records) await warden.decide(calls[next++ & 3]);
        }),
      );
      await sink.flush();
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      await sink.close();
      record(
        `decide + jsonl ${durability}, 100-rule policy`,
        "jsonl",
        durability,
        records,
        concurrency,
        seconds,
      );
    }
    if (options.postgres !== false)
      results.push(await measurePostgres(options.postgres ?? {}, records, concurrency));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return results;
}

/**
 * The floor a JSONL sink is held to, in the same run: each record serialised (plain JSON.stringify)
 * and hashed, appended in batches of 1,000 with one write (and one fdatasync) per batch, with no
 * canonical key order and no per-record Promise. `hmac: "record"` signs every record (the format
 * before checkpoints); `"batch"` chains the hashes and signs the last one of each batch, as the
 * sinks now do.
 */
async function floor(
  path: string,
  records: number,
  durability: Durability,
  hmac: "record" | "batch",
): Promise<number> {
  const handle = await open(path, "a");
  const start = process.hrtime.bigint();
  try {
    let prev = "0".repeat(64);
    for (let first = 0; first < records; first += 1000) {
      const lines: string[] = [];
      const last = Math.min(records, first + 1000) - 1;
      for (let i = first; i <= last; i++) {
        const json = JSON.stringify(event(i));
        if (hmac === "record") {
          const hash = createHash("sha256").update(json).digest("hex");
          const mac = createHmac("sha256", KEY).update(hash).digest("hex");
          lines.push(`${json.slice(0, -1)},"hash":"${hash}","hmac":"${mac}"}`);
        } else {
          const hash = sha256(`${json.slice(0, -1)},"prev":"${prev}"}`);
          const mac = i === last ? createHmac("sha256", KEY).update(hash).digest("hex") : `@${last + 1}`;
          lines.push(`${json.slice(0, -1)},"prev":"${prev}","hash":"${hash}","hmac":"${mac}"}`);
          prev = hash;
        }
      }
      lines.push("");
      await handle.write(lines.join("\n"));
      if (durability === "fsync") await handle.datasync();
    }
    return Number(process.hrtime.bigint() - start) / 1e9;
  } finally {
    await handle.close();
  }
}

/** CPU µs this process used since `start`. */
function cpuSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return used.user + used.system;
}

function sha256(text: string): string {
  return hash("sha256", text, "hex");
}

async function measurePostgres(
  connection: Exclude<AuditThroughputOptions["postgres"], false | undefined>,
  records: number,
  concurrency: number,
): Promise<AuditThroughput> {
  const { PostgresAuditSink } = await import("../audit/postgres-sink.js");
  const pg = (await import("pg")).default;
  const config = { host: "127.0.0.1", port: 5432, user: "postgres", database: "test", ...connection };
  const schema = `tw_bench_audit_${process.pid}_${randomBytes(4).toString("hex")}`;
  const name = `postgres fsync, ${concurrency} in flight`;
  let sink: InstanceType<typeof PostgresAuditSink>;
  try {
    sink = await PostgresAuditSink.open({
      connection: { ...config, connectionTimeoutMillis: 3000 },
      schema,
      key: KEY,
    });
  } catch (error) {
    const skipped = `no PostgreSQL at ${config.host}:${config.port}: ${(error as Error).message}`;
    return {
      name,
      sink: "postgres",
      durability: "fsync",
      concurrency,
      records: 0,
      seconds: 0,
      recordsPerSecond: 0,
      cpuUsPerRecord: 0,
      skipped,
    };
  }
  try {
    const cpu = process.cpuUsage();
    const seconds = await drive(sink, records, concurrency);
    return {
      name,
      sink: "postgres",
      durability: "fsync",
      concurrency,
      records,
      seconds,
      recordsPerSecond: records / seconds,
      // This process only: the server's share is not in it.
      cpuUsPerRecord: cpuSince(cpu) / records,
    };
  } finally {
    await sink.close();
    const client = new pg.Client(config);
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
    await client.end();
  }
}

/** The rows `auditScenarios` reports, named as `measureAuditThroughput` names them (256 in flight). */
const AUDIT_ROWS = [
  "floor fsync, batches of 1000 (1 in flight)",
  "floor write, batches of 1000 (1 in flight)",
  "floor fsync, checkpoint per batch of 1000 (1 in flight)",
  "floor write, checkpoint per batch of 1000 (1 in flight)",
  "jsonl fsync, 256 in flight (256 in flight)",
  "jsonl write, 256 in flight (256 in flight)",
  "jsonl fsync, one at a time (1 in flight)",
  "sqlite fsync, 256 in flight (256 in flight)",
  "decide + jsonl fsync, 100-rule policy (256 in flight)",
  "decide + jsonl write, 100-rule policy (256 in flight)",
  "postgres fsync, 256 in flight (256 in flight)",
];

/**
 * `toolwarden bench` rows: one per sink, as the time per record at the sustained rate, with its
 * ratios to the floors of the same durability measured in the same run (HMAC per record, and one
 * HMAC checkpoint per batch).
 */
export async function auditScenarios(): Promise<import("./harness.js").BenchResult[]> {
  // The names are known before measuring; every row is measured when one is chosen (they share the floors).
  const chosen = AUDIT_ROWS.map((row) => wanted(`audit ${row}`));
  if (!chosen.some(Boolean)) return [];
  // Three rounds of every scenario, interleaved, best of each: on a shared machine one slow second
  // would otherwise decide a scenario's ratio to the floors measured at another moment.
  const rounds: AuditThroughput[][] = [];
  for (let round = 0; round < 3; round++) {
    rounds.push((await measureAuditThroughput({ records: 10_000 })).filter((row) => !row.skipped));
  }
  const best = (name: string, by: (r: AuditThroughput) => number) =>
    rounds
      .map((r) => r.find((other) => other.name === name))
      .filter((r) => r !== undefined)
      .reduce((a, b) => (by(b) < by(a) ? b : a));
  const rows = rounds[0]!.map((row) => ({
    ...best(row.name, (r) => -r.recordsPerSecond),
    cpuUsPerRecord: best(row.name, (r) => r.cpuUsPerRecord).cpuUsPerRecord,
  }));
  const floorOf = (durability: Durability, kind: "batches of 1000" | "checkpoint") =>
    rows.find((r) => r.name.startsWith("floor") && r.durability === durability && r.name.includes(kind));
  return rows.map((row) => {
    const ratios = (["batches of 1000", "checkpoint"] as const)
      .map((kind) => [kind, floorOf(row.durability, kind)] as const)
      .filter(([, base]) => base && base !== row && !row.name.startsWith("floor"))
      .map(
        ([kind, base]) =>
          `${(base!.recordsPerSecond / row.recordsPerSecond).toFixed(2)}x the ${kind === "checkpoint" ? "checkpoint floor" : "floor"}`,
      );
    const cpuFloor = floorOf(row.durability, "checkpoint");
    const cpu = `; cpu ${row.cpuUsPerRecord.toFixed(1)} µs/record${cpuFloor && cpuFloor !== row ? `, ${(row.cpuUsPerRecord / cpuFloor.cpuUsPerRecord).toFixed(2)}x the checkpoint floor's` : ""}`;
    return {
      name: `audit ${row.name} (${row.concurrency} in flight)`,
      medianNs: 1e9 / row.recordsPerSecond,
      p99Ns: 1e9 / row.recordsPerSecond,
      opsPerSec: row.recordsPerSecond,
      note: `${Math.round(row.recordsPerSecond).toLocaleString("en-US")} records/s${ratios.length ? `, ${ratios.join(", ")}` : ""}${cpu}`,
    };
  });
}
