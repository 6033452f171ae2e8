import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { ensurePrivateFile } from "../core/private-file.js";
import {
  type ChainHead,
  GENESIS,
  hmacHex,
  hmacRole,
  type SigningOptions,
  signingKey,
  ZERO_HASH,
} from "./chain.js";
import { BATCH_TABLES, batchRows, type RecordRow, SELECT_RECORD_COLUMNS, verifyRows } from "./db-rows.js";
import { AuditSinkError } from "./errors.js";
import { type BatchedSinkOptions, GroupCommitSink } from "./group-commit.js";
import type { Durability } from "./jsonl-sink.js";
import type { AuditEvent, AuditSink } from "./types.js";
import { type AuditVerifyResult, ChainVerifier } from "./verify.js";

/** Schema migrations, applied in order once each; see docs/audit-schema.md. */
const MIGRATIONS: Array<{ version: number; name: string; sql: string }> = [
  {
    version: 1,
    name: "audit records, violations, approvals",
    sql: `
      CREATE TABLE audit_chains (
        chain TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        hash TEXT NOT NULL
      );
      CREATE TABLE audit_records (
        chain TEXT NOT NULL,
        seq INTEGER NOT NULL,
        time TEXT NOT NULL,
        kind TEXT NOT NULL,
        session TEXT,
        agent TEXT,
        tool TEXT,
        server TEXT,
        verdict TEXT,
        rule TEXT,
        policy TEXT,
        args_hash TEXT,
        prev TEXT NOT NULL,
        hash TEXT NOT NULL,
        hmac TEXT NOT NULL,
        record TEXT NOT NULL,
        written_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        PRIMARY KEY (chain, seq)
      );
      CREATE INDEX audit_records_time ON audit_records (time);
      CREATE INDEX audit_records_session ON audit_records (session, time);
      CREATE INDEX audit_records_agent ON audit_records (agent, time);
      CREATE INDEX audit_records_tool ON audit_records (tool, time);
      CREATE INDEX audit_records_verdict ON audit_records (verdict, time);
      CREATE TABLE audit_violations (
        chain TEXT NOT NULL,
        seq INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        code TEXT NOT NULL,
        arg TEXT,
        verdict TEXT,
        message TEXT,
        PRIMARY KEY (chain, seq, idx),
        FOREIGN KEY (chain, seq) REFERENCES audit_records (chain, seq)
      );
      CREATE INDEX audit_violations_code ON audit_violations (code);
      CREATE TABLE audit_approvals (
        chain TEXT NOT NULL,
        seq INTEGER NOT NULL,
        approval_id TEXT NOT NULL,
        status TEXT NOT NULL,
        decided_by TEXT,
        reason TEXT,
        PRIMARY KEY (chain, seq),
        FOREIGN KEY (chain, seq) REFERENCES audit_records (chain, seq)
      );
      CREATE INDEX audit_approvals_id ON audit_approvals (approval_id);
    `,
  },
];

export interface SqliteSinkOptions extends SigningOptions, BatchedSinkOptions {
  /** Database file (created with its directory), or `:memory:`. */
  path: string;
  /** Chain id of this writer; default `main`. */
  chain?: string;
  /** `fsync`: synchronous=FULL; `write`: synchronous=NORMAL (survives a process crash); `none`: acknowledge on enqueue. Default `fsync`. */
  durability?: Durability;
}

/**
 * Audit records in SQLite (WAL mode), batched into one transaction per group commit, whose last
 * record is the batch's signed checkpoint. Each batch reads the chain head inside
 * `BEGIN IMMEDIATE`, so several processes sharing the file and the chain still produce one unbroken
 * chain. better-sqlite3 is synchronous: a commit blocks the event loop for its fsync, which
 * batching keeps to one per batch.
 */
export class SqliteAuditSink extends GroupCommitSink<AuditEvent> implements AuditSink {
  readonly kind = "sqlite";
  readonly chain: string;
  readonly #db: Database.Database;
  readonly #key: Buffer | undefined;
  readonly #writeBatch: (events: AuditEvent[]) => void;

  constructor(options: SqliteSinkOptions) {
    super(options);
    this.#key = signingKey(options);
    this.chain = options.chain ?? "main";
    if (options.path !== ":memory:") {
      mkdirSync(dirname(options.path), { recursive: true });
      ensurePrivateFile(options.path);
    }
    this.#db = new Database(options.path);
    try {
      this.#db.pragma("journal_mode = WAL");
      this.#db.pragma(`synchronous = ${(options.durability ?? "fsync") === "fsync" ? "FULL" : "NORMAL"}`);
      this.#db.pragma("busy_timeout = 5000");
      this.#db.pragma("foreign_keys = ON");
      migrate(this.#db);
    } catch (error) {
      this.#db.close();
      throw error;
    }
    this.#writeBatch = this.#prepareWriter();
  }

  /** The chain's last record, as stored. */
  get head(): ChainHead {
    return readHead(this.#db, this.chain);
  }

  protected release(): void {
    this.#db.close();
  }

  /** The chain's last `limit` records as stored (seq and record JSON), oldest first. */
  recentRecords(limit: number): Array<{ seq: number; record: string }> {
    const rows = this.#db
      .prepare("SELECT seq, record FROM audit_records WHERE chain = ? ORDER BY seq DESC LIMIT ?")
      .all(this.chain, limit) as Array<{ seq: number; record: string }>;
    return rows.reverse();
  }

  /**
   * Removes the chain's records after `seq` (0: all of them) and makes the record at `seq` the
   * head again; returns how many were removed. For levelling the copy with the log of record
   * before it takes new records (see `levelSqliteWithJsonl`).
   */
  truncateAfter(seq: number): number {
    const db = this.#db;
    const chain = this.chain;
    return db
      .transaction(() => {
        db.prepare("DELETE FROM audit_violations WHERE chain = ? AND seq > ?").run(chain, seq);
        db.prepare("DELETE FROM audit_approvals WHERE chain = ? AND seq > ?").run(chain, seq);
        const removed = db
          .prepare("DELETE FROM audit_records WHERE chain = ? AND seq > ?")
          .run(chain, seq).changes;
        const row = db
          .prepare("SELECT seq, hash FROM audit_records WHERE chain = ? AND seq = ?")
          .get(chain, seq) as ChainHead | undefined;
        if (row) {
          this.#signHead(row.seq);
          db.prepare("UPDATE audit_chains SET seq = ?, hash = ? WHERE chain = ?").run(
            row.seq,
            row.hash,
            chain,
          );
        } else {
          db.prepare("DELETE FROM audit_chains WHERE chain = ?").run(chain);
        }
        return removed;
      })
      .immediate();
  }

  /**
   * Makes the record at `seq` a checkpoint when the cut took the one that signed it: the records
   * from the last checkpoint up to it are checked first, so only records this sink wrote are signed.
   */
  #signHead(seq: number): void {
    const key = this.#key;
    const select = `${SELECT_RECORD_COLUMNS} FROM audit_records WHERE chain = ?`;
    const last = this.#db.prepare(`${select} AND seq = ?`).get(this.chain, seq) as RecordRow;
    if (!key || hmacRole(last.hmac).role !== "covered") return;
    const checkpoint = this.#db
      .prepare(`${select} AND seq < ? AND hmac NOT LIKE '@%' ORDER BY seq DESC LIMIT 1`)
      .get(this.chain, seq) as RecordRow | undefined;
    const from = checkpoint ? { seq: checkpoint.seq - 1, hash: checkpoint.prev } : GENESIS;
    const verifier = new ChainVerifier(key, from);
    const rows = this.#db
      .prepare(`${select} AND seq > ? AND seq <= ? ORDER BY seq`)
      .iterate(this.chain, from.seq, seq) as IterableIterator<RecordRow>;
    for (const row of rows) {
      const problem = verifier.check(JSON.parse(row.record));
      if (problem)
        throw new AuditSinkError(`cannot cut the sqlite audit chain at ${seq}: ${problem.message}`);
    }
    const hmac = hmacHex(key, last.hash);
    const record = `${last.record.slice(0, last.record.lastIndexOf('"hmac":'))}"hmac":"${hmac}"}`;
    this.#db
      .prepare("UPDATE audit_records SET hmac = ?, record = ? WHERE chain = ? AND seq = ?")
      .run(hmac, record, this.chain, seq);
  }

  /** Verifies this sink's chain (or another chain in the same database) from the rows and the chain head. */
  async verify(key: Buffer | string | undefined = this.#key, chain = this.chain): Promise<AuditVerifyResult> {
    return verifySqlite(this.#db, key, chain);
  }

  protected writeBatch(events: AuditEvent[]): void {
    try {
      this.#writeBatch(events);
    } catch (error) {
      throw new AuditSinkError(`cannot write audit records to sqlite: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  #prepareWriter(): (events: AuditEvent[]) => void {
    const db = this.#db;
    const chain = this.chain;
    const inserts = BATCH_TABLES.map(({ name, rows, columns }) => ({
      rows,
      statement: db.prepare(
        `INSERT INTO ${name} (${columns.join(", ")}) VALUES (${columns.map((c) => `@${c}`).join(", ")})`,
      ),
    }));
    const setHead = db.prepare(
      "INSERT INTO audit_chains (chain, seq, hash) VALUES (?, ?, ?) ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
    );
    const getHead = db.prepare("SELECT seq, hash FROM audit_chains WHERE chain = ?");
    const getHeadRecord = db.prepare("SELECT hash, hmac FROM audit_records WHERE chain = ? AND seq = ?");
    const key = this.#key;
    const batch = db.transaction((events: AuditEvent[]) => {
      const head = (getHead.get(chain) as ChainHead | undefined) ?? GENESIS;
      const headRecord = getHeadRecord.get(chain, head.seq) as RecordRow | undefined;
      const batch = batchRows(events, head, headRecord, key, chain);
      for (const { rows, statement } of inserts) for (const r of batch[rows]) statement.run(r);
      setHead.run(chain, batch.head.seq, batch.head.hash);
    });
    return (events) => batch.immediate(events);
  }
}

function readHead(db: Database.Database, chain: string): ChainHead {
  const row = db.prepare("SELECT seq, hash FROM audit_chains WHERE chain = ?").get(chain) as
    | { seq: number; hash: string }
    | undefined;
  return row ? { seq: row.seq, hash: row.hash } : GENESIS;
}

/** Applies missing migrations; safe to run from several processes at once (one wins `BEGIN IMMEDIATE`). */
function migrate(db: Database.Database): void {
  db.exec(
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
  );
  db.transaction(() => {
    const applied = new Set(
      (db.prepare("SELECT version FROM schema_migrations").all() as Array<{ version: number }>).map(
        (r) => r.version,
      ),
    );
    for (const migration of MIGRATIONS) {
      if (applied.has(migration.version)) continue;
      db.exec(migration.sql);
      db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(
        migration.version,
        migration.name,
        new Date().toISOString(),
      );
    }
  }).immediate();
}

/** Verifies one chain of a SQLite audit database (an open better-sqlite3 handle). */
export async function verifySqlite(
  db: Database.Database,
  key: Buffer | string | undefined,
  chain = "main",
): Promise<AuditVerifyResult> {
  const rows = db
    .prepare(`${SELECT_RECORD_COLUMNS} FROM audit_records WHERE chain = ? ORDER BY seq`)
    .iterate(chain) as IterableIterator<RecordRow>;
  const head = readHead(db, chain);
  return verifyRows(rows, key, {
    table: `audit_records:${chain}`,
    head: head.hash === ZERO_HASH ? undefined : head,
  });
}

export type { ApprovalRow, RecordRow, ViolationRow } from "./db-rows.js";
