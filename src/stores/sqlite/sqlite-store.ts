import Database from "better-sqlite3";
import { DEFAULT_APPROVAL_RETENTION_MS, isExpired } from "../approval.js";
import { fromMicros, maxToMicros, toMicros } from "../micros.js";
import type {
  Approval,
  ApprovalStatus,
  LimitBucket,
  LimitTrip,
  SpendRequest,
  SpendResult,
  StateStore,
} from "../types.js";

/** Options for {@link SqliteStateStore}. */
export interface SqliteStateStoreOptions {
  /** Database file; created with its tables when missing. `:memory:` works but shares nothing. */
  path: string;
  /** How long a writer waits for another process's transaction (default 5000 ms). */
  busyTimeoutMs?: number;
  /** How long finished approvals are kept after expiry (default 7 days). */
  approvalRetentionMs?: number;
  /** Expired window rows of idle keys are deleted at most this often, in `now` time (default 60 s). */
  sweepIntervalMs?: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS tw_window (key TEXT NOT NULL, ts REAL NOT NULL, expires_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS tw_window_key_ts ON tw_window (key, ts);
CREATE INDEX IF NOT EXISTS tw_window_expires ON tw_window (expires_at);
CREATE TABLE IF NOT EXISTS tw_total (key TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tw_spend (key TEXT PRIMARY KEY, micros INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tw_seen (session TEXT NOT NULL, label TEXT NOT NULL, PRIMARY KEY (session, label)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tw_approval (
  id TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  call_hash TEXT NOT NULL,
  created_at REAL NOT NULL,
  expires_at REAL NOT NULL,
  data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tw_approval_hash ON tw_approval (call_hash, status);
CREATE INDEX IF NOT EXISTS tw_approval_status ON tw_approval (status, expires_at);
`;

interface WindowRow {
  n: number;
  oldest: number | null;
}

/**
 * State in one SQLite file (WAL mode): survives restarts, and several processes on one host may
 * share the file. Every deciding operation runs in a `BEGIN IMMEDIATE` transaction, which takes
 * the write lock before reading, so two processes never both see room for the last call.
 */
export class SqliteStateStore implements StateStore {
  readonly kind = "sqlite";
  private readonly db: Database.Database;
  private readonly retentionMs: number;
  private readonly sweepIntervalMs: number;
  private lastSweep = Number.NEGATIVE_INFINITY;
  private readonly stmt: ReturnType<typeof prepare>;
  private readonly peekTx: (buckets: LimitBucket[], now: number) => LimitTrip[];
  private readonly consumeTx: (buckets: LimitBucket[], now: number) => LimitTrip[];
  private readonly spendTx: (key: string, amount: number, max: number) => SpendResult;
  private readonly addSeenTx: (session: string, labels: string[]) => string[];
  private readonly putTx: (approval: Approval) => void;
  private readonly decideTx: (
    id: string,
    status: "approved" | "denied",
    by: string,
    reason: string | undefined,
    now: number,
  ) => Approval | undefined;
  private readonly useTx: (callHash: string, now: number) => Approval | undefined;
  private readonly expireTx: (now: number) => Approval[];

  constructor(options: SqliteStateStoreOptions) {
    this.retentionMs = options.approvalRetentionMs ?? DEFAULT_APPROVAL_RETENTION_MS;
    this.sweepIntervalMs = options.sweepIntervalMs ?? 60_000;
    this.db = new Database(options.path, { timeout: options.busyTimeoutMs ?? 5000 });
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    this.db.transaction(() => this.db.exec(SCHEMA)).immediate();
    const stmt = prepare(this.db);
    this.stmt = stmt;

    const check = (buckets: LimitBucket[], now: number): LimitTrip[] => {
      const trips: LimitTrip[] = [];
      for (const bucket of buckets) {
        if (bucket.windowMs > 0) {
          const row = stmt.windowCount.get(bucket.key, now - bucket.windowMs) as WindowRow;
          if (row.n >= bucket.limit) {
            const resetAt = row.oldest === null ? null : row.oldest + bucket.windowMs;
            trips.push({ key: bucket.key, limit: bucket.limit, count: row.n, resetAt });
          }
        } else {
          const count = (stmt.totalGet.get(bucket.key) as number | undefined) ?? 0;
          if (count >= bucket.limit)
            trips.push({ key: bucket.key, limit: bucket.limit, count, resetAt: null });
        }
      }
      return trips;
    };
    this.peekTx = this.db.transaction(check);

    this.consumeTx = this.db.transaction((buckets: LimitBucket[], now: number) => {
      const trips = check(buckets, now);
      if (trips.length > 0) return trips;
      for (const bucket of buckets) {
        if (bucket.windowMs > 0) {
          stmt.windowPrune.run(bucket.key, now - bucket.windowMs);
          stmt.windowAdd.run(bucket.key, now, now + bucket.windowMs);
        } else {
          stmt.totalAdd.run(bucket.key);
        }
      }
      if (now - this.lastSweep >= this.sweepIntervalMs) {
        stmt.windowSweep.run(now);
        this.lastSweep = now;
      }
      return trips;
    }).immediate;

    this.spendTx = this.db.transaction((key: string, amount: number, max: number): SpendResult => {
      const current = (stmt.spendGet.get(key) as number | undefined) ?? 0;
      if (Number.isNaN(amount) || current + amount > max) {
        return { ok: false, spent: fromMicros(current), remaining: fromMicros(Math.max(0, max - current)) };
      }
      const total = current + amount;
      stmt.spendSet.run(key, total);
      return { ok: true, spent: fromMicros(total), remaining: fromMicros(max - total) };
    }).immediate;

    this.addSeenTx = this.db.transaction((session: string, labels: string[]) => {
      for (const label of labels) stmt.seenAdd.run(session, label);
      return stmt.seenGet.all(session) as string[];
    }).immediate;

    this.putTx = this.db.transaction((approval: Approval) => {
      stmt.approvalPut.run(
        approval.id,
        approval.status,
        approval.callHash,
        approval.createdAt,
        approval.expiresAt,
        JSON.stringify(approval),
      );
    }).immediate;

    const save = (approval: Approval) =>
      stmt.approvalUpdate.run(approval.status, JSON.stringify(approval), approval.id);

    this.decideTx = this.db.transaction(
      (id: string, status: "approved" | "denied", by: string, reason: string | undefined, now: number) => {
        const data = stmt.approvalGet.get(id) as string | undefined;
        if (data === undefined) return undefined;
        const approval = JSON.parse(data) as Approval;
        if (approval.status !== "pending") return undefined;
        if (isExpired(approval, now)) {
          approval.status = "expired";
          save(approval);
          return undefined;
        }
        approval.status = status;
        approval.decidedAt = now;
        approval.decidedBy = by;
        if (reason !== undefined) approval.decisionReason = reason;
        save(approval);
        return approval;
      },
    ).immediate;

    this.useTx = this.db.transaction((callHash: string, now: number) => {
      for (const data of stmt.approvalsApproved.all(callHash) as string[]) {
        const approval = JSON.parse(data) as Approval;
        approval.status = isExpired(approval, now) ? "expired" : "used";
        save(approval);
        if (approval.status === "used") return approval;
      }
      return undefined;
    }).immediate;

    this.expireTx = this.db.transaction((now: number) => {
      const expired: Approval[] = [];
      for (const data of stmt.approvalsDue.all(now) as string[]) {
        const approval = JSON.parse(data) as Approval;
        approval.status = "expired";
        save(approval);
        expired.push(approval);
      }
      stmt.approvalsForget.run(now - this.retentionMs);
      return expired;
    }).immediate;
  }

  async consume(buckets: LimitBucket[], now: number): Promise<LimitTrip[]> {
    return this.consumeTx(buckets, now);
  }

  async peek(buckets: LimitBucket[], now: number): Promise<LimitTrip[]> {
    return this.peekTx(buckets, now);
  }

  async spend(request: SpendRequest): Promise<SpendResult> {
    return this.spendTx(request.key, toMicros(request.amount), maxToMicros(request.max));
  }

  async spent(key: string): Promise<number> {
    return fromMicros((this.stmt.spendGet.get(key) as number | undefined) ?? 0);
  }

  async addSeen(session: string, labels: string[]): Promise<string[]> {
    return this.addSeenTx(session, labels);
  }

  async seen(session: string): Promise<string[]> {
    return this.stmt.seenGet.all(session) as string[];
  }

  async putApproval(approval: Approval): Promise<void> {
    this.putTx(approval);
  }

  async getApproval(id: string): Promise<Approval | undefined> {
    const data = this.stmt.approvalGet.get(id) as string | undefined;
    return data === undefined ? undefined : (JSON.parse(data) as Approval);
  }

  async listApprovals(filter: { status?: ApprovalStatus } = {}): Promise<Approval[]> {
    const rows = (
      filter.status === undefined
        ? this.stmt.approvalsAll.all()
        : this.stmt.approvalsByStatus.all(filter.status)
    ) as string[];
    return rows.map((data) => JSON.parse(data) as Approval);
  }

  async decideApproval(
    id: string,
    status: "approved" | "denied",
    by: string,
    reason: string | undefined,
    now: number,
  ): Promise<Approval | undefined> {
    return this.decideTx(id, status, by, reason, now);
  }

  async useApproval(callHash: string, now: number): Promise<Approval | undefined> {
    return this.useTx(callHash, now);
  }

  async expireApprovals(now: number): Promise<Approval[]> {
    return this.expireTx(now);
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}

/** Every statement, prepared once per connection; single-column reads are plucked. */
function prepare(db: Database.Database) {
  return {
    // A call at `ts` counts while `now - ts < windowMs`, i.e. `ts > now - windowMs`.
    windowCount: db.prepare(
      "SELECT count(*) AS n, min(ts) AS oldest FROM tw_window WHERE key = ? AND ts > ?",
    ),
    windowPrune: db.prepare("DELETE FROM tw_window WHERE key = ? AND ts <= ?"),
    windowAdd: db.prepare("INSERT INTO tw_window (key, ts, expires_at) VALUES (?, ?, ?)"),
    windowSweep: db.prepare("DELETE FROM tw_window WHERE expires_at <= ?"),
    totalGet: db.prepare("SELECT n FROM tw_total WHERE key = ?").pluck(),
    totalAdd: db.prepare(
      "INSERT INTO tw_total (key, n) VALUES (?, 1) ON CONFLICT (key) DO UPDATE SET n = n + 1",
    ),
    spendGet: db.prepare("SELECT micros FROM tw_spend WHERE key = ?").pluck(),
    spendSet: db.prepare(
      "INSERT INTO tw_spend (key, micros) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET micros = excluded.micros",
    ),
    seenAdd: db.prepare("INSERT OR IGNORE INTO tw_seen (session, label) VALUES (?, ?)"),
    seenGet: db.prepare("SELECT label FROM tw_seen WHERE session = ?").pluck(),
    approvalPut: db.prepare(
      "INSERT OR REPLACE INTO tw_approval (id, status, call_hash, created_at, expires_at, data) VALUES (?, ?, ?, ?, ?, ?)",
    ),
    approvalUpdate: db.prepare("UPDATE tw_approval SET status = ?, data = ? WHERE id = ?"),
    approvalGet: db.prepare("SELECT data FROM tw_approval WHERE id = ?").pluck(),
    approvalsAll: db.prepare("SELECT data FROM tw_approval ORDER BY created_at, id").pluck(),
    approvalsByStatus: db
      .prepare("SELECT data FROM tw_approval WHERE status = ? ORDER BY created_at, id")
      .pluck(),
    approvalsApproved: db
      .prepare(
        "SELECT data FROM tw_approval WHERE call_hash = ? AND status = 'approved' ORDER BY created_at, id",
      )
      .pluck(),
    approvalsDue: db
      .prepare(
        "SELECT data FROM tw_approval WHERE status IN ('pending', 'approved') AND expires_at <= ? ORDER BY created_at, id",
      )
      .pluck(),
    approvalsForget: db.prepare(
      "DELETE FROM tw_approval WHERE status IN ('denied', 'expired', 'used') AND expires_at <= ?",
    ),
  };
}
