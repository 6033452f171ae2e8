import pg from "pg";
import { type ChainHead, GENESIS, type SigningOptions, signingKey } from "./chain.js";
import { BATCH_TABLES, batchRows, type RecordRow, SELECT_RECORD_COLUMNS, verifyRows } from "./db-rows.js";
import { AuditSinkError } from "./errors.js";
import { type BatchedSinkOptions, GroupCommitSink } from "./group-commit.js";
import type { Durability } from "./jsonl-sink.js";
import type { AuditEvent, AuditSink } from "./types.js";
import type { AuditVerifyResult } from "./verify.js";

/** Schema migrations, applied in order once each; `%s` is the quoted schema. See docs/audit-schema.md. */
const MIGRATIONS: Array<{ version: number; name: string; sql: string }> = [
  {
    version: 1,
    name: "audit records, violations, approvals",
    sql: `
      CREATE TABLE %s.audit_chains (
        chain text PRIMARY KEY,
        seq bigint NOT NULL,
        hash text NOT NULL
      );
      CREATE TABLE %s.audit_records (
        chain text NOT NULL,
        seq bigint NOT NULL,
        time text NOT NULL,
        kind text NOT NULL,
        session text,
        agent text,
        tool text,
        server text,
        verdict text,
        rule text,
        policy text,
        args_hash text,
        prev text NOT NULL,
        hash text NOT NULL,
        hmac text NOT NULL,
        record text NOT NULL,
        written_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (chain, seq)
      );
      CREATE INDEX audit_records_time ON %s.audit_records (time);
      CREATE INDEX audit_records_session ON %s.audit_records (session, time);
      CREATE INDEX audit_records_agent ON %s.audit_records (agent, time);
      CREATE INDEX audit_records_tool ON %s.audit_records (tool, time);
      CREATE INDEX audit_records_verdict ON %s.audit_records (verdict, time);
      CREATE TABLE %s.audit_violations (
        chain text NOT NULL,
        seq bigint NOT NULL,
        idx integer NOT NULL,
        code text NOT NULL,
        arg text,
        verdict text,
        message text,
        PRIMARY KEY (chain, seq, idx),
        FOREIGN KEY (chain, seq) REFERENCES %s.audit_records (chain, seq)
      );
      CREATE INDEX audit_violations_code ON %s.audit_violations (code);
      CREATE TABLE %s.audit_approvals (
        chain text NOT NULL,
        seq bigint NOT NULL,
        approval_id text NOT NULL,
        status text NOT NULL,
        decided_by text,
        reason text,
        PRIMARY KEY (chain, seq),
        FOREIGN KEY (chain, seq) REFERENCES %s.audit_records (chain, seq)
      );
      CREATE INDEX audit_approvals_id ON %s.audit_approvals (approval_id);
    `,
  },
];

export interface PostgresSinkOptions extends SigningOptions, BatchedSinkOptions {
  /** A pool to use; the sink does not end it. */
  pool?: pg.Pool;
  /** Connection string or settings for a pool the sink owns (ended on `close`). */
  connection?: string | pg.PoolConfig;
  /** Schema holding the tables, created if missing. Default `toolwarden_audit`. */
  schema?: string;
  /**
   * Chain id of this writer. Default `main`. Writers sharing a chain take turns on its
   * `audit_chains` row (one global order); give each replica its own chain to write without waiting.
   */
  chain?: string;
  /** `fsync`: durable commit; `write`: `synchronous_commit = off` (may lose the last commits if the server crashes); `none`: acknowledge on enqueue. Default `fsync`. */
  durability?: Durability;
}

/**
 * Audit records in PostgreSQL, one transaction per group-committed batch. Construction does no I/O,
 * so a sink can exist while the server is down (its appends reject until it is back); `open`
 * constructs and waits for the schema. Each batch locks its chain's row in `audit_chains`
 * (`SELECT ... FOR UPDATE`), reads the head, inserts the records and moves the head in the same
 * transaction: any number of replicas can write one chain without forking it, and a failed batch
 * leaves no trace.
 */
export class PostgresAuditSink extends GroupCommitSink<AuditEvent> implements AuditSink {
  readonly kind = "postgres";
  readonly chain: string;
  readonly schema: string;
  readonly #pool: pg.Pool;
  readonly #ownsPool: boolean;
  readonly #key: Buffer | undefined;
  readonly #durability: Durability;
  readonly #q: string;
  #migrated: Promise<void> | undefined;

  constructor(options: PostgresSinkOptions) {
    super(options);
    this.#key = signingKey(options);
    this.chain = options.chain ?? "main";
    this.schema = options.schema ?? "toolwarden_audit";
    this.#q = pg.escapeIdentifier(this.schema);
    this.#durability = options.durability ?? "fsync";
    if (options.pool) {
      this.#pool = options.pool;
      this.#ownsPool = false;
    } else {
      const config =
        typeof options.connection === "string"
          ? { connectionString: options.connection }
          : options.connection;
      this.#pool = new pg.Pool({ max: 2, connectionTimeoutMillis: 5000, ...config });
      this.#ownsPool = true;
    }
    // An idle client losing its server must not crash the process; the next batch reconnects.
    this.#pool.on("error", () => {});
  }

  /** Constructs a sink and waits until its schema is in place (throws if the server is unreachable). */
  static async open(options: PostgresSinkOptions): Promise<PostgresAuditSink> {
    const sink = new PostgresAuditSink(options);
    try {
      await sink.ready();
    } catch (error) {
      await sink.close().catch(() => {});
      throw error;
    }
    return sink;
  }

  /** Applies missing migrations (once; retried after a failure). */
  ready(): Promise<void> {
    this.#migrated ??= this.#withClient((client) => migrate(client, this.schema)).catch((error) => {
      this.#migrated = undefined;
      throw error;
    });
    return this.#migrated;
  }

  protected async release(): Promise<void> {
    if (this.#ownsPool) await this.#pool.end();
  }

  /** The chain's last record, as stored. */
  async head(): Promise<ChainHead> {
    await this.ready();
    return this.#withClient((client) => readHead(client, this.#q, this.chain));
  }

  /** Verifies this sink's chain (or another chain in the same schema) from the rows and the chain head. */
  async verify(key: Buffer | string | undefined = this.#key, chain = this.chain): Promise<AuditVerifyResult> {
    await this.ready();
    return this.#withClient((client) => verifyPostgres(client, key, { schema: this.schema, chain }));
  }

  async #withClient<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw new AuditSinkError(`cannot reach the postgres audit database: ${(error as Error).message}`, {
        cause: error,
      });
    }
    watchClient(client);
    let broken: unknown;
    try {
      return await work(client);
    } catch (error) {
      broken = error;
      throw error;
    } finally {
      // A client that failed mid-transaction may be in any state: drop it rather than reuse it.
      client.release(broken instanceof Error ? broken : undefined);
    }
  }

  protected async writeBatch(events: AuditEvent[]): Promise<void> {
    try {
      await this.ready();
      await this.#withClient(async (client) => {
        await client.query("BEGIN");
        try {
          if (this.#durability !== "fsync") await client.query("SET LOCAL synchronous_commit = off");
          await this.#insertBatch(client, events);
          await client.query("COMMIT");
        } catch (error) {
          await client.query("ROLLBACK").catch(() => {});
          throw error;
        }
      });
    } catch (error) {
      if (error instanceof AuditSinkError) throw error;
      throw new AuditSinkError(`cannot write audit records to postgres: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  async #insertBatch(client: pg.PoolClient, events: AuditEvent[]): Promise<void> {
    const q = this.#q;
    const chain = this.chain;
    await client.query(
      `INSERT INTO ${q}.audit_chains (chain, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (chain) DO NOTHING`,
      [chain, GENESIS.hash],
    );
    const locked = await client.query<{ seq: string; hash: string }>(
      `SELECT seq, hash FROM ${q}.audit_chains WHERE chain = $1 FOR UPDATE`,
      [chain],
    );
    const head: ChainHead = { seq: Number(locked.rows[0]!.seq), hash: locked.rows[0]!.hash };
    // The head's own row, to check it is a signed checkpoint (one more round trip, only when signing).
    const headRecord =
      this.#key && head.seq > 0
        ? (
            await client.query<{ hash: string; hmac: string }>(
              `SELECT hash, hmac FROM ${q}.audit_records WHERE chain = $1 AND seq = $2`,
              [chain, head.seq],
            )
          ).rows[0]
        : undefined;
    const batch = batchRows(events, head, headRecord, this.#key, chain);
    // unnest() takes one array per column: a single statement per table whatever the batch size.
    for (const { name, rows, columns, types } of BATCH_TABLES) {
      if (batch[rows].length > 0) await insertColumns(client, `${q}.${name}`, columns, types, batch[rows]);
    }
    await client.query(`UPDATE ${q}.audit_chains SET seq = $2, hash = $3 WHERE chain = $1`, [
      chain,
      batch.head.seq,
      batch.head.hash,
    ]);
  }
}

async function insertColumns(
  client: pg.PoolClient,
  table: string,
  columns: readonly string[],
  types: readonly string[],
  rows: readonly object[],
): Promise<void> {
  const arrays = columns.map((column) => rows.map((row) => (row as Record<string, unknown>)[column] ?? null));
  const unnest = types.map((type, i) => `$${i + 1}::${type}[]`).join(", ");
  await client.query(`INSERT INTO ${table} (${columns.join(", ")}) SELECT * FROM unnest(${unnest})`, arrays);
}

const watched = new WeakSet<pg.PoolClient>();
function watchClient(client: pg.PoolClient): void {
  if (watched.has(client)) return;
  watched.add(client);
  // The failing query rejects on its own; without a listener the client's 'error' event would crash the process.
  client.on("error", () => {});
}

async function readHead(client: pg.ClientBase, q: string, chain: string): Promise<ChainHead> {
  const result = await client.query<{ seq: string; hash: string }>(
    `SELECT seq, hash FROM ${q}.audit_chains WHERE chain = $1`,
    [chain],
  );
  const row = result.rows[0];
  return row ? { seq: Number(row.seq), hash: row.hash } : GENESIS;
}

/**
 * Applies missing migrations in one transaction under an advisory lock, so replicas starting
 * together neither race nor fail: the first applies, the others find them applied.
 */
async function migrate(client: pg.ClientBase, schema: string): Promise<void> {
  const q = pg.escapeIdentifier(schema);
  await client.query("BEGIN");
  try {
    await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`toolwarden.audit.migrate:${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${q}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${q}.schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const applied = new Set(
      (await client.query<{ version: number }>(`SELECT version FROM ${q}.schema_migrations`)).rows.map(
        (r) => r.version,
      ),
    );
    for (const migration of MIGRATIONS) {
      if (applied.has(migration.version)) continue;
      await client.query(migration.sql.replaceAll("%s", q));
      await client.query(`INSERT INTO ${q}.schema_migrations (version, name) VALUES ($1, $2)`, [
        migration.version,
        migration.name,
      ]);
    }
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  }
}

/** Verifies one chain of a PostgreSQL audit schema, streaming its rows in pages. */
export async function verifyPostgres(
  client: pg.ClientBase,
  key: Buffer | string | undefined,
  options: { schema?: string; chain?: string; pageSize?: number } = {},
): Promise<AuditVerifyResult> {
  const schema = options.schema ?? "toolwarden_audit";
  const chain = options.chain ?? "main";
  const q = pg.escapeIdentifier(schema);
  const pageSize = options.pageSize ?? 5000;
  const head = await readHead(client, q, chain);
  async function* rows(): AsyncGenerator<RecordRow> {
    let after = 0;
    for (;;) {
      const page = await client.query<RecordRow>(
        `${SELECT_RECORD_COLUMNS} FROM ${q}.audit_records WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
        [chain, after, pageSize],
      );
      for (const row of page.rows) yield row;
      if (page.rows.length < pageSize) return;
      after = Number(page.rows.at(-1)!.seq);
    }
  }
  return verifyRows(rows(), key, {
    table: `${schema}.audit_records:${chain}`,
    head: head.seq === 0 ? undefined : head,
  });
}

export type { ApprovalRow, RecordRow, ViolationRow } from "./db-rows.js";
