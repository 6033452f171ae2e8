import type { AuditRecord } from "../audit/types.js";
import type { Verdict } from "../core/index.js";
import { importOptional } from "../core/optional.js";

/** Filters for the audit search; every field narrows, all are optional. */
export interface AuditFilter {
  kind?: string;
  agent?: string;
  tool?: string;
  verdict?: Verdict;
  session?: string;
  rule?: string;
  /** ISO-8601, inclusive. */
  since?: string;
  /** ISO-8601, exclusive. */
  until?: string;
  /** Only records older than this `seq` (the page cursor). */
  before?: number;
  /** Only records that carry raw arguments (policy `audit: { args: full }`). */
  withArgs?: boolean;
  /** Default 100, at most 1000. */
  limit?: number;
}

export interface AuditPage {
  records: AuditRecord[];
  /** Pass as `before` for the next (older) page; absent on the last page. */
  next?: number;
}

export type VerdictCounts = Record<Verdict, number>;

export interface AuditStats {
  bucket: "minute" | "hour";
  since: string;
  /** Decisions per time bucket (`t` is the bucket's ISO prefix, e.g. `2025-01-01T10:04`). */
  series: Array<{ t: string } & VerdictCounts>;
  totals: VerdictCounts;
  topDeniedTools: Array<{ name: string; count: number }>;
  topDeniedRules: Array<{ name: string; count: number }>;
  /** Every rule that decided in the range, with how often (any verdict): what `audit stats --rules` shows. */
  rules: Array<{ name: string; count: number }>;
}

/** Reads the audit tables a database sink writes (SQLite or PostgreSQL; one schema, docs/audit-schema.md). */
export interface AuditReader {
  query(filter: AuditFilter): Promise<AuditPage>;
  stats(since: string, bucket: "minute" | "hour"): Promise<AuditStats>;
  /** Records in the chain; the load bench counts them. */
  count(): Promise<number>;
  close(): Promise<void>;
}

type Row = Record<string, unknown>;

/** The SQL is the same for both databases but for placeholders and the table's schema prefix. */
abstract class SqlAuditReader implements AuditReader {
  constructor(
    protected readonly table: string,
    protected readonly chain: string,
  ) {}

  protected abstract all(sql: string, params: unknown[]): Promise<Row[]>;
  protected abstract placeholder(n: number): string;
  abstract close(): Promise<void>;

  async query(filter: AuditFilter): Promise<AuditPage> {
    const limit = Math.min(Math.max(1, filter.limit ?? 100), 1000);
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (clause: string, value: unknown) => {
      params.push(value);
      where.push(clause.replace("?", this.placeholder(params.length)));
    };
    add("chain = ?", this.chain);
    const equals: Array<[keyof AuditFilter, string]> = [
      ["kind", "kind"],
      ["agent", "agent"],
      ["tool", "tool"],
      ["verdict", "verdict"],
      ["session", "session"],
      ["rule", "rule"],
    ];
    for (const [key, column] of equals) if (filter[key] !== undefined) add(`${column} = ?`, filter[key]);
    if (filter.since) add("time >= ?", filter.since);
    if (filter.until) add("time < ?", filter.until);
    if (filter.before !== undefined) add("seq < ?", filter.before);
    if (filter.withArgs) where.push(`record LIKE '%"args":%'`);
    params.push(limit + 1);
    const rows = await this.all(
      `SELECT seq, record FROM ${this.table} WHERE ${where.join(" AND ")} ORDER BY seq DESC LIMIT ${this.placeholder(params.length)}`,
      params,
    );
    const records = rows.slice(0, limit).map((row) => JSON.parse(String(row.record)) as AuditRecord);
    const page: AuditPage = { records };
    if (rows.length > limit) page.next = Number(rows[limit - 1].seq);
    return page;
  }

  async stats(since: string, bucket: "minute" | "hour"): Promise<AuditStats> {
    const width = bucket === "minute" ? 16 : 13;
    const p1 = this.placeholder(1);
    const p2 = this.placeholder(2);
    const scope = `chain = ${p1} AND kind = 'decision' AND time >= ${p2}`;
    const params = [this.chain, since];
    const [series, totals, tools, rules, decided] = await Promise.all([
      this.all(
        `SELECT substr(time, 1, ${width}) AS t, verdict, count(*) AS n FROM ${this.table} WHERE ${scope} GROUP BY substr(time, 1, ${width}), verdict ORDER BY t`,
        params,
      ),
      this.all(`SELECT verdict, count(*) AS n FROM ${this.table} WHERE ${scope} GROUP BY verdict`, params),
      this.all(
        `SELECT tool AS name, count(*) AS n FROM ${this.table} WHERE ${scope} AND verdict = 'deny' AND tool IS NOT NULL GROUP BY tool ORDER BY n DESC, name LIMIT 10`,
        params,
      ),
      this.all(
        `SELECT rule AS name, count(*) AS n FROM ${this.table} WHERE ${scope} AND verdict = 'deny' AND rule IS NOT NULL GROUP BY rule ORDER BY n DESC, name LIMIT 10`,
        params,
      ),
      this.all(
        `SELECT rule AS name, count(*) AS n FROM ${this.table} WHERE ${scope} AND rule IS NOT NULL GROUP BY rule ORDER BY n DESC, name LIMIT 1000`,
        params,
      ),
    ]);
    const buckets = new Map<string, { t: string } & VerdictCounts>();
    for (const row of series) {
      const t = String(row.t);
      let entry = buckets.get(t);
      if (!entry) buckets.set(t, (entry = { t, ...zero() }));
      if (isVerdict(row.verdict)) entry[row.verdict] = Number(row.n);
    }
    const sum = zero();
    for (const row of totals) if (isVerdict(row.verdict)) sum[row.verdict] = Number(row.n);
    const top = (rows: Row[]) => rows.map((row) => ({ name: String(row.name), count: Number(row.n) }));
    return {
      bucket,
      since,
      series: [...buckets.values()],
      totals: sum,
      topDeniedTools: top(tools),
      topDeniedRules: top(rules),
      rules: top(decided),
    };
  }

  async count(): Promise<number> {
    const rows = await this.all(
      `SELECT count(*) AS n FROM ${this.table} WHERE chain = ${this.placeholder(1)}`,
      [this.chain],
    );
    return Number(rows[0]?.n ?? 0);
  }
}

function zero(): VerdictCounts {
  return { allow: 0, flag: 0, ask: 0, deny: 0 };
}

function isVerdict(value: unknown): value is Verdict {
  return value === "allow" || value === "flag" || value === "ask" || value === "deny";
}

/** Reads a SQLite audit database through its own connection (WAL lets it read while the sink writes). */
export class SqliteAuditReader extends SqlAuditReader {
  readonly #db: import("better-sqlite3").Database;

  private constructor(db: import("better-sqlite3").Database, chain: string) {
    super("audit_records", chain);
    this.#db = db;
  }

  static async open(path: string, chain = "main"): Promise<SqliteAuditReader> {
    const { default: Database } = await import("better-sqlite3");
    const db = new Database(path, { fileMustExist: true, timeout: 5000 });
    db.pragma("query_only = ON");
    return new SqliteAuditReader(db, chain);
  }

  protected placeholder(): string {
    return "?";
  }

  protected async all(sql: string, params: unknown[]): Promise<Row[]> {
    return this.#db.prepare(sql).all(...params) as Row[];
  }

  async close(): Promise<void> {
    this.#db.close();
  }
}

/** Reads the PostgreSQL audit tables (schema `toolwarden_audit` unless told otherwise). */
export class PostgresAuditReader extends SqlAuditReader {
  readonly #pool: import("pg").Pool;

  private constructor(pool: import("pg").Pool, schema: string, chain: string) {
    super(`"${schema.replace(/"/g, '""')}".audit_records`, chain);
    this.#pool = pool;
  }

  static async open(
    connection: string,
    options: { schema?: string; chain?: string } = {},
  ): Promise<PostgresAuditReader> {
    const { default: pg } = await importOptional(
      "pg",
      "reading the PostgreSQL audit sink",
      () => import("pg"),
    );
    const pool = new pg.Pool({ connectionString: connection, max: 4 });
    pool.on("error", () => {});
    return new PostgresAuditReader(pool, options.schema ?? "toolwarden_audit", options.chain ?? "main");
  }

  protected placeholder(n: number): string {
    return `$${n}`;
  }

  protected async all(sql: string, params: unknown[]): Promise<Row[]> {
    return (await this.#pool.query(sql, params)).rows as Row[];
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}
