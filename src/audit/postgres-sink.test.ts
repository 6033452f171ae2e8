import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { AuditSinkError } from "./errors.js";
import { describeSinkConformance } from "./fixtures/conformance.js";
import { decisionEvent, TEST_KEY } from "./fixtures/events.js";
import { dropSchema, PG_CONNECTION, skipPostgres, uniqueSchema } from "./fixtures/postgres.js";
import { PostgresAuditSink, verifyPostgres } from "./postgres-sink.js";

const skip = await skipPostgres();

async function withClient<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(PG_CONNECTION);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

describeSinkConformance(
  "PostgresAuditSink",
  async () => {
    const schema = uniqueSchema();
    return {
      open: () => PostgresAuditSink.open({ connection: PG_CONNECTION, schema, key: TEST_KEY }),
      verify: () => withClient((client) => verifyPostgres(client, TEST_KEY, { schema })),
      tools: () =>
        withClient(async (client) =>
          (
            await client.query<{ tool: string }>(
              `SELECT tool FROM ${pg.escapeIdentifier(schema)}.audit_records WHERE chain = 'main' ORDER BY seq`,
            )
          ).rows.map((r) => r.tool),
        ),
      cleanup: () => dropSchema(schema),
    };
  },
  skip,
);

describe.skipIf(skip)("PostgresAuditSink", () => {
  const schemas: string[] = [];
  const sinks: PostgresAuditSink[] = [];
  function fresh(options: { chain?: string; schema?: string; batchSize?: number } = {}): PostgresAuditSink {
    const schema = options.schema ?? uniqueSchema();
    if (!schemas.includes(schema)) schemas.push(schema);
    const sink = new PostgresAuditSink({ connection: PG_CONNECTION, key: TEST_KEY, ...options, schema });
    sinks.push(sink);
    return sink;
  }
  afterEach(async () => {
    await Promise.all(sinks.splice(0).map((s) => s.close().catch(() => {})));
    for (const schema of schemas.splice(0)) await dropSchema(schema);
  });

  it("refuses to extend a chain whose head is not a signed checkpoint (its checkpoint row cut)", async () => {
    const sink = fresh();
    await Promise.all([1, 2, 3].map((i) => sink.append(decisionEvent(i))));
    const q = pg.escapeIdentifier(sink.schema);
    await withClient(async (client) => {
      const two = await client.query<{ hash: string }>(`SELECT hash FROM ${q}.audit_records WHERE seq = 2`);
      await client.query(`DELETE FROM ${q}.audit_violations WHERE seq = 3`);
      await client.query(`DELETE FROM ${q}.audit_records WHERE seq = 3`);
      await client.query(`UPDATE ${q}.audit_chains SET seq = 2, hash = $1`, [two.rows[0]!.hash]);
    });
    await expect(sink.append(decisionEvent(4))).rejects.toThrow(
      /record 2\) is not a checkpoint signed with this key/,
    );
    expect((await sink.verify()).firstError).toMatchObject({ problem: "hmac", line: 1, seq: 1 });
  });

  it("migrates idempotently, also when replicas start at the same time", async () => {
    const schema = uniqueSchema();
    const replicas = [fresh({ schema }), fresh({ schema }), fresh({ schema })];
    await Promise.all(replicas.map((r) => r.ready()));
    await fresh({ schema }).ready();
    const versions = await withClient(
      async (c) =>
        (await c.query(`SELECT version FROM ${pg.escapeIdentifier(schema)}.schema_migrations`)).rows,
    );
    expect(versions).toEqual([{ version: 1 }]);
  });

  it("keeps one chain with several replicas writing it at once", async () => {
    const schema = uniqueSchema();
    const replicas = [
      fresh({ schema, batchSize: 5 }),
      fresh({ schema, batchSize: 5 }),
      fresh({ schema, batchSize: 5 }),
    ];
    await Promise.all(
      Array.from({ length: 90 }, (_, i) =>
        replicas[i % 3]!.append(decisionEvent(i, { agent: `replica-${i % 3}` })),
      ),
    );
    const result = await replicas[0]!.verify();
    expect(result).toMatchObject({ ok: true, records: 90, last: { seq: 90 } });
    expect(await replicas[1]!.head()).toEqual(result.last);
  });

  it("gives each replica its own chain when asked", async () => {
    const schema = uniqueSchema();
    const a = fresh({ schema, chain: "replica-a" });
    const b = fresh({ schema, chain: "replica-b" });
    await Promise.all([a.append(decisionEvent(1)), b.append(decisionEvent(2)), a.append(decisionEvent(3))]);
    expect(await a.verify()).toMatchObject({ ok: true, records: 2 });
    expect(await b.verify()).toMatchObject({ ok: true, records: 1 });
  });

  it("fills the violation and approval tables", async () => {
    const sink = fresh();
    await sink.append(decisionEvent(4));
    await sink.append(
      decisionEvent(5, { kind: "approval", approval: { id: "ap-9", status: "denied", by: "bob" } }),
    );
    const q = pg.escapeIdentifier(sink.schema);
    await withClient(async (c) => {
      expect((await c.query(`SELECT seq::int, idx, code, arg FROM ${q}.audit_violations`)).rows).toEqual([
        { seq: 1, idx: 0, code: "secret.aws_key", arg: "body" },
      ]);
      expect(
        (await c.query(`SELECT seq::int, approval_id, status, decided_by FROM ${q}.audit_approvals`)).rows,
      ).toEqual([{ seq: 2, approval_id: "ap-9", status: "denied", decided_by: "bob" }]);
    });
  });

  it.each([
    ["an edited column", "UPDATE %s.audit_records SET verdict = 'allow' WHERE seq = 4", "hash", 4],
    ["a deleted row", "DELETE FROM %s.audit_records WHERE seq = 2", "missing", 2],
    ["a deleted last row", "DELETE FROM %s.audit_records WHERE seq = 5", "missing", 5],
    ["a moved record", "UPDATE %s.audit_records SET seq = 7 WHERE seq = 3", "missing", 3],
  ])("detects %s", async (_name, sql, problem, line) => {
    const sink = fresh();
    for (let i = 1; i <= 5; i++) await sink.append(decisionEvent(i));
    await withClient(async (c) => {
      await c.query(
        `ALTER TABLE ${pg.escapeIdentifier(sink.schema)}.audit_violations DROP CONSTRAINT audit_violations_chain_seq_fkey`,
      );
      await c.query(sql.replaceAll("%s", pg.escapeIdentifier(sink.schema)));
    });
    const result = await sink.verify();
    expect(result.ok).toBe(false);
    expect(result.firstError).toMatchObject({ problem, line });
  });

  it("rejects appends while the server is unreachable, without breaking the chain", async () => {
    const down = new PostgresAuditSink({
      connection: { host: "127.0.0.1", port: 1, user: "postgres", database: "test" },
      key: TEST_KEY,
    });
    sinks.push(down);
    await expect(down.append(decisionEvent(1))).rejects.toThrow(AuditSinkError);
    await expect(
      PostgresAuditSink.open({ connection: { ...PG_CONNECTION, port: 1 }, key: TEST_KEY }),
    ).rejects.toThrow(/cannot reach the postgres audit database/);
  });
});
