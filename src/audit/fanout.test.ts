import { readFile, symlink, writeFile } from "node:fs/promises";
import net from "node:net";
import { join } from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AuditSinkError } from "./errors.js";
import { FanoutAuditSink } from "./fanout.js";
import { describeSinkConformance } from "./fixtures/conformance.js";
import { decisionEvent, TEST_KEY, tempDir } from "./fixtures/events.js";
import { dropSchema, PG_CONNECTION, skipPostgres, uniqueSchema } from "./fixtures/postgres.js";
import { JsonlAuditSink } from "./jsonl-sink.js";
import { PostgresAuditSink } from "./postgres-sink.js";
import { SqliteAuditSink, verifySqlite } from "./sqlite-sink.js";
import type { AuditEvent, AuditSink } from "./types.js";
import { verifyAuditLog } from "./verify.js";

const skip = await skipPostgres();

/** A TCP relay to the real PostgreSQL server that can be taken down and brought back on a fixed port. */
class Relay {
  #server: net.Server | undefined;
  #sockets = new Set<net.Socket>();
  constructor(readonly port: number) {}

  static async onFreePort(): Promise<Relay> {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const { port } = probe.address() as net.AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    return new Relay(port);
  }

  async up(): Promise<void> {
    this.#server = net.createServer((client) => {
      const server = net.connect(PG_CONNECTION.port, PG_CONNECTION.host);
      for (const socket of [client, server]) {
        this.#sockets.add(socket);
        socket.on("close", () => this.#sockets.delete(socket));
        socket.on("error", () => {
          client.destroy();
          server.destroy();
        });
      }
      client.pipe(server).pipe(client);
    });
    await new Promise<void>((resolve) => this.#server!.listen(this.port, "127.0.0.1", resolve));
  }

  async down(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    if (this.#server) await new Promise((resolve) => this.#server!.close(resolve));
    this.#server = undefined;
  }
}

describe.skipIf(skip)("FanoutAuditSink", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let schema: string;
  let relay: Relay;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
    schema = uniqueSchema();
    relay = await Relay.onFreePort();
  });
  afterEach(async () => {
    await relay.down();
    await dropSchema(schema);
    await cleanup();
  });

  const logPath = () => join(dir, "audit.jsonl");
  const spoolDir = () => join(dir, "spool");
  async function open(): Promise<FanoutAuditSink> {
    return FanoutAuditSink.open({
      sinks: [
        { name: "file", sink: await JsonlAuditSink.open({ path: logPath(), key: TEST_KEY }) },
        {
          name: "pg",
          sink: new PostgresAuditSink({
            connection: { ...PG_CONNECTION, port: relay.port, connectionTimeoutMillis: 2000 },
            schema,
            key: TEST_KEY,
          }),
        },
      ],
      spoolDir: spoolDir(),
      key: TEST_KEY,
      bound: 5,
      retryMs: 20,
      maxRetryMs: 100,
    });
  }
  async function pgTools(): Promise<string[]> {
    const client = new pg.Client(PG_CONNECTION);
    await client.connect();
    try {
      const q = pg.escapeIdentifier(schema);
      return (await client.query(`SELECT tool FROM ${q}.audit_records ORDER BY seq`)).rows.map((r) => r.tool);
    } finally {
      await client.end();
    }
  }
  async function pgVerify() {
    const sink = await PostgresAuditSink.open({ connection: PG_CONNECTION, schema, key: TEST_KEY });
    try {
      return await sink.verify();
    } finally {
      await sink.close();
    }
  }
  const tools = (from: number, to: number) =>
    Array.from({ length: to - from + 1 }, (_, i) => `tool_${from + i}`);

  it("spools for a sink that is down, keeps writing the others, and replays in order when it is back", async () => {
    const fanout = await open();
    for (let i = 1; i <= 12; i++) await fanout.append(decisionEvent(i));
    // The file sink got everything at once; Postgres is queued on disk.
    expect(await verifyAuditLog([logPath()], TEST_KEY)).toMatchObject({ ok: true, records: 12 });
    const [file, pgStatus] = fanout.status();
    expect(file).toMatchObject({ name: "file", mode: "direct", queued: 0 });
    expect(pgStatus).toMatchObject({ name: "pg", kind: "postgres", mode: "spooling", queued: 12 });
    expect(pgStatus?.lastError).toMatch(/cannot reach the postgres audit database/);
    expect(fanout.queueDepth).toBe(12);
    expect(fanout.overBound).toBe(true);

    await relay.up();
    await fanout.drained();
    expect(fanout.queueDepth).toBe(0);
    expect(fanout.overBound).toBe(false);
    expect(fanout.status()[1]?.mode).toBe("direct");
    await fanout.append(decisionEvent(13));
    await fanout.close();
    expect(await pgTools()).toEqual(tools(1, 13));
    expect(await pgVerify()).toMatchObject({ ok: true, records: 13 });
  });

  it("keeps the spool across a restart and replays it after", async () => {
    let fanout = await open();
    for (let i = 1; i <= 4; i++) await fanout.append(decisionEvent(i));
    await fanout.close();
    expect(
      (await readFile(join(spoolDir(), "pg.spool.jsonl"), "utf8")).split("\n").filter(Boolean),
    ).toHaveLength(4);

    await relay.up();
    fanout = await open();
    expect(fanout.status()[1]).toMatchObject({ mode: "spooling", queued: 4 });
    await fanout.append(decisionEvent(5));
    await fanout.drained();
    await fanout.close();
    expect(await pgTools()).toEqual(tools(1, 5));
    expect(await pgVerify()).toMatchObject({ ok: true, records: 5 });
  });

  it("goes back to spooling when the sink drops again", async () => {
    await relay.up();
    const fanout = await open();
    await fanout.append(decisionEvent(1));
    expect(fanout.status()[1]?.mode).toBe("direct");
    await relay.down();
    await fanout.append(decisionEvent(2));
    expect(fanout.status()[1]).toMatchObject({ mode: "spooling", queued: 1 });
    await relay.up();
    await fanout.drained();
    await fanout.close();
    expect(await pgTools()).toEqual(tools(1, 2));
  });

  it("refuses to replay a spool that was edited", async () => {
    let fanout = await open();
    for (let i = 1; i <= 3; i++) await fanout.append(decisionEvent(i));
    await fanout.close();
    const spool = join(spoolDir(), "pg.spool.jsonl");
    await writeFile(spool, (await readFile(spool, "utf8")).replace('"tool":"tool_2"', '"tool":"tool_x"'));
    await relay.up();
    fanout = await open();
    await vi.waitFor(() => expect(fanout.status()[1]?.lastError).toMatch(/does not verify/), {
      timeout: 10_000,
    });
    expect(fanout.status()[1]).toMatchObject({ mode: "spooling", queued: 3 });
    await expect(Promise.all([fanout.drained(), fanout.close()])).rejects.toThrow(/closed before the spool/);
    expect(await pgTools().catch(() => [])).toEqual([]);
  });

  it("rejects the append when a record can be neither written nor spooled", async () => {
    const fanout = await open();
    // /dev/full fails every write: the disk under the spool is full.
    await symlink("/dev/full", join(spoolDir(), "pg.spool.jsonl"));
    await expect(fanout.append(decisionEvent(1))).rejects.toThrow(AuditSinkError);
    await expect(fanout.append(decisionEvent(1))).rejects.toThrow(
      /neither written nor spooled for sink `pg`/,
    );
    expect(fanout.queueDepth).toBe(0);
    await fanout.close().catch(() => {});
  });
});

describe("FanoutAuditSink options", () => {
  it.each([
    ["a bad name", [{ name: "a/b" }], /must match/],
    ["a repeated name", [{ name: "x" }, { name: "x" }], /used twice/],
  ])("rejects %s", async (_name, entries, message) => {
    const { dir, cleanup } = await tempDir();
    const sink = await JsonlAuditSink.open({ path: join(dir, "a.jsonl"), key: TEST_KEY });
    await expect(
      FanoutAuditSink.open({ sinks: entries.map((e) => ({ name: e.name, sink })), spoolDir: join(dir, "s") }),
    ).rejects.toThrow(message);
    await sink.close();
    await cleanup();
  });
});

describeSinkConformance("FanoutAuditSink over JSONL and SQLite", async () => {
  const { dir, cleanup } = await tempDir();
  const path = join(dir, "audit.jsonl");
  const db = join(dir, "audit.db");
  return {
    open: async () =>
      FanoutAuditSink.open({
        sinks: [
          { name: "file", sink: await JsonlAuditSink.open({ path, key: TEST_KEY }) },
          { name: "db", sink: new SqliteAuditSink({ path: db, key: TEST_KEY }) },
        ],
        spoolDir: join(dir, "spool"),
        key: TEST_KEY,
      }),
    verify: async () => {
      const file = await verifyAuditLog([path], TEST_KEY);
      const handle = new Database(db, { readonly: true });
      try {
        const rows = await verifySqlite(handle, TEST_KEY);
        expect(rows).toMatchObject({ ok: true, records: file.records });
      } finally {
        handle.close();
      }
      return file;
    },
    tools: async () =>
      (await readFile(path, "utf8"))
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line).tool),
    cleanup,
  };
});

/** A real sink whose appends wait at a gate until the test opens it. */
class GatedSink implements AuditSink {
  readonly kind: string;
  #open!: () => void;
  readonly #gate = new Promise<void>((resolve) => {
    this.#open = resolve;
  });
  constructor(readonly inner: AuditSink) {
    this.kind = inner.kind;
  }
  open(): void {
    this.#open();
  }
  async append(event: AuditEvent): Promise<void> {
    await this.#gate;
    await this.inner.append(event);
  }
  flush(): Promise<void> {
    return this.#gate.then(() => this.inner.flush());
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

describe("FanoutAuditSink copies", () => {
  async function setup(copy: boolean) {
    const { dir, cleanup } = await tempDir();
    const path = join(dir, "audit.jsonl");
    const db = join(dir, "audit.db");
    const gated = new GatedSink(new SqliteAuditSink({ path: db, key: TEST_KEY }));
    const fanout = await FanoutAuditSink.open({
      sinks: [
        { name: "jsonl", sink: await JsonlAuditSink.open({ path, key: TEST_KEY }) },
        { name: "sqlite", sink: gated, copy },
      ],
      spoolDir: join(dir, "spool"),
      key: TEST_KEY,
    });
    const rows = () => {
      const handle = new Database(db, { readonly: true });
      try {
        return (handle.prepare("select count(*) as n from audit_records").get() as { n: number }).n;
      } catch {
        return 0;
      } finally {
        handle.close();
      }
    };
    return { path, gated, fanout, rows, cleanup };
  }

  const settledWithin = (promise: Promise<unknown>, ms: number) =>
    Promise.race([promise.then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), ms))]);

  it("answers an append once the record of truth has it; flushCopies waits for the copy", async () => {
    const { path, gated, fanout, rows, cleanup } = await setup(true);
    expect(await settledWithin(fanout.append(decisionEvent(1)), 2_000)).toBe(true);
    expect((await verifyAuditLog([path], TEST_KEY)).records).toBe(1);
    const copied = fanout.flushCopies();
    expect(await settledWithin(copied, 100)).toBe(false);
    gated.open();
    await copied;
    expect(rows()).toBe(1);
    await fanout.close();
    await cleanup();
  });

  it("waits for a sink that is not a copy", async () => {
    const { gated, fanout, cleanup } = await setup(false);
    const appended = fanout.append(decisionEvent(1));
    expect(await settledWithin(appended, 300)).toBe(false);
    gated.open();
    await appended;
    await fanout.close();
    await cleanup();
  });
});
