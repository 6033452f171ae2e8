import Database from "better-sqlite3";
import { ensurePrivateFile } from "../../core/private-file.js";
import { DEFAULT_APPROVAL_RETENTION_MS, isExpired } from "../approval.js";
import { DEFAULT_STORE_TIMEOUT_MS } from "../deadline.js";
import { fromMicros, maxToMicros, toMicros } from "../micros.js";
import type {
  Approval,
  ApprovalStatus,
  LimitBucket,
  LimitTrip,
  SessionCounters,
  SessionLimits,
  SessionNote,
  SessionOpened,
  SessionOpenRequest,
  SessionRead,
  SpendRequest,
  SpendResult,
  StateStore,
  StoredRecord,
} from "../types.js";
import { MAX_BLOCKED_KEPT, SESSION_OVERFLOW } from "../types.js";
import { CommitWatch } from "./commit-watch.js";

/** Options for {@link SqliteStateStore}. */
export interface SqliteStateStoreOptions {
  /** Database file; created with its tables when missing. `:memory:` works but shares nothing. */
  path: string;
  /**
   * How long a writer waits for another process's transaction. better-sqlite3 waits synchronously,
   * holding up every call of this process, so the default is the store deadline
   * ({@link DEFAULT_STORE_TIMEOUT_MS}, 250 ms): past it the operation fails and the call is denied.
   */
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
CREATE TABLE IF NOT EXISTS tw_session (
  id TEXT PRIMARY KEY,
  owner TEXT,
  meta TEXT,
  seq INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  overflow INTEGER NOT NULL,
  expires_at REAL NOT NULL,
  counts TEXT NOT NULL,
  blocked TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tw_session_expires ON tw_session (expires_at);
CREATE INDEX IF NOT EXISTS tw_session_owner ON tw_session (owner, expires_at);
CREATE TABLE IF NOT EXISTS tw_session_entry (session TEXT NOT NULL, seq INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (session, seq));
CREATE TABLE IF NOT EXISTS tw_record (key TEXT PRIMARY KEY, version INTEGER NOT NULL, value TEXT NOT NULL, expires_at REAL);
`;

interface SessionRow {
  owner: string | null;
  meta: string | null;
  seq: number;
  bytes: number;
  overflow: number;
  expires_at: number;
  counts: string;
  blocked: string;
}

/** What a read before a decision needs of a session's row: not its report counters, which grow. */
type SessionHead = Pick<SessionRow, "owner" | "meta" | "seq" | "expires_at">;

/** Session heads kept between commits, at most (a read of one more starts afresh). */
const MAX_HEADS_KEPT = 10_000;

/** A session read found that it must write (an expired session to delete, an expiry to refresh). */
const MUST_WRITE = Symbol("must write");

/**
 * How long report counters gather before one transaction writes them (`noteSession`); a store
 * deadline (`--store-timeout`) shorter than this would count every note as a missed answer.
 */
const NOTES_GATHER_MS = 10;

/** What a session read answers: the row's owner, meta and sequence, and the entries read after it. */
function sessionRead(row: SessionHead, entries: string[]): SessionRead {
  return { owner: row.owner ?? undefined, meta: row.meta ?? undefined, seq: row.seq, entries };
}

interface QueuedNote {
  id: string;
  note: SessionNote;
  limits: SessionLimits;
  now: number;
  resolve: (noted: boolean) => void;
  reject: (error: unknown) => void;
}

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
  private readonly openTx: (
    id: string,
    request: SessionOpenRequest,
    limits: SessionLimits,
    now: number,
  ) => SessionOpened;
  private readonly readTx: (
    id: string,
    after: number,
    limits: SessionLimits,
    now: number,
  ) => SessionRead | undefined;
  private readonly readOnlyTx: (
    id: string,
    after: number,
    limits: SessionLimits,
    now: number,
  ) => SessionRead | undefined | typeof MUST_WRITE;
  private readonly appendTx: (
    id: string,
    entries: string[],
    limits: SessionLimits,
    now: number,
  ) => number | undefined;
  private readonly notesTx: (notes: QueuedNote[]) => boolean[];
  /** Report counters waiting to be written in one transaction (`noteSession`). */
  private notes: QueuedNote[] = [];
  private notesTimer: NodeJS.Timeout | undefined;
  private readonly putRecordTx: (
    key: string,
    value: string,
    expect: number,
    expiresAt: number | null,
    now: number,
  ) => boolean;
  private lastSessionSweep = Number.NEGATIVE_INFINITY;
  /** Whether anything was committed (by any process) since the session heads below were read. */
  private readonly commits: CommitWatch | undefined;
  /** Session heads read since the last commit seen: still current until the next one. */
  private readonly heads = new Map<string, SessionHead>();

  constructor(options: SqliteStateStoreOptions) {
    this.retentionMs = options.approvalRetentionMs ?? DEFAULT_APPROVAL_RETENTION_MS;
    this.sweepIntervalMs = options.sweepIntervalMs ?? 60_000;
    try {
      ensurePrivateFile(options.path);
    } catch {
      // a path SQLite cannot open either: let it say why
    }
    this.db = new Database(options.path, { timeout: options.busyTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS });
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    this.db.transaction(() => this.db.exec(SCHEMA)).immediate();
    this.commits = CommitWatch.open(this.db);
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

    // Sessions: one transaction per operation, so an append is all or nothing.
    const live = (id: string, now: number): SessionRow | undefined => {
      const row = stmt.sessionGet.get(id) as SessionRow | undefined;
      if (row && row.expires_at <= now) {
        stmt.sessionEntriesDelete.run(id);
        stmt.sessionDelete.run(id);
        return undefined;
      }
      return row;
    };
    const sweep = (now: number) => {
      stmt.sessionSweepEntries.run(now);
      stmt.sessionSweep.run(now);
      this.lastSessionSweep = now;
    };
    this.openTx = this.db.transaction(
      (id: string, request: SessionOpenRequest, limits: SessionLimits, now: number): SessionOpened => {
        const row = live(id, now);
        if (row) {
          stmt.sessionTouch.run(now + limits.ttlMs, id);
          return { ok: true, created: false, owner: row.owner ?? undefined, meta: row.meta ?? undefined };
        }
        if (now - this.lastSessionSweep > Math.min(limits.ttlMs, this.sweepIntervalMs)) sweep(now);
        const total = stmt.sessionCount.get(now) as number;
        if (total >= limits.maxSessions) {
          return { ok: false, reason: `the store holds ${total} live sessions, its limit` };
        }
        const owner = request.owner || undefined;
        if (owner !== undefined) {
          const owned = stmt.sessionCountOwner.get(owner, now) as number;
          if (owned >= limits.maxPerOwner) {
            return { ok: false, reason: `agent \`${owner}\` holds ${owned} live sessions, its limit` };
          }
        }
        stmt.sessionInsert.run(id, owner ?? null, request.meta ?? null, now + limits.ttlMs);
        return { ok: true, created: true, owner, meta: request.meta };
      },
    ).immediate;
    const entriesOf = (row: SessionHead, id: string, after: number): SessionRead =>
      sessionRead(row, row.seq > after ? (stmt.sessionEntries.all(id, after) as string[]) : []);
    this.readTx = this.db.transaction((id: string, after: number, limits: SessionLimits, now: number) => {
      const row = live(id, now);
      if (!row) return undefined;
      // A read is activity, but it need not write every time: refresh once a tenth of the TTL has passed.
      if (row.expires_at - now < limits.ttlMs * 0.9) stmt.sessionTouch.run(now + limits.ttlMs, id);
      return entriesOf(row, id, after);
    }).immediate;
    // The read before every decision, as a read (WAL: no write lock, no wait for a writer): half
    // the cost of `readTx`. It hands over to `readTx` when the read must write.
    this.readOnlyTx = this.db.transaction((id: string, after: number, limits: SessionLimits, now: number) => {
      const row = stmt.sessionHead.get(id) as SessionHead | undefined;
      if (!row) return undefined;
      if (row.expires_at <= now || row.expires_at - now < limits.ttlMs * 0.9) return MUST_WRITE;
      return entriesOf(row, id, after);
    }).deferred;
    this.appendTx = this.db.transaction(
      (id: string, entries: string[], limits: SessionLimits, now: number) => {
        const row = live(id, now);
        if (!row) return undefined;
        stmt.sessionTouch.run(now + limits.ttlMs, id);
        if (row.overflow) return row.seq;
        let size = 0;
        for (const entry of entries) size += Buffer.byteLength(entry);
        let seq = row.seq;
        if (row.bytes + size > limits.maxBytes) {
          stmt.sessionEntryAdd.run(id, ++seq, SESSION_OVERFLOW);
          stmt.sessionGrow.run(seq, 0, 1, id);
        } else {
          for (const entry of entries) stmt.sessionEntryAdd.run(id, ++seq, entry);
          stmt.sessionGrow.run(seq, size, 0, id);
        }
        return seq;
      },
    ).immediate;
    // The notes of one session in a batch: one read and one write of its row, however many.
    const noteAll = (id: string, notes: QueuedNote[]): boolean => {
      const { limits, now } = notes[notes.length - 1];
      const row = live(id, now);
      if (!row) return false;
      const counts = JSON.parse(row.counts) as Record<string, number>;
      let list: string[] | undefined;
      for (const { note } of notes) {
        const key = `${note.tool}\u0000${note.verdict}`;
        counts[note.verdict] = (counts[note.verdict] ?? 0) + 1;
        counts[key] = (counts[key] ?? 0) + 1;
        if (note.blocked !== undefined) (list ??= JSON.parse(row.blocked) as string[]).push(note.blocked);
      }
      const blocked = list ? JSON.stringify(list.slice(-MAX_BLOCKED_KEPT)) : row.blocked;
      // Activity, refreshed as a read refreshes it: rewriting `expires_at` (and its two indexes)
      // on every note would triple the pages each commit writes.
      if (row.expires_at - now < limits.ttlMs * 0.9)
        stmt.sessionNote.run(JSON.stringify(counts), blocked, now + limits.ttlMs, id);
      else stmt.sessionCounts.run(JSON.stringify(counts), blocked, id);
      return true;
    };
    this.notesTx = this.db.transaction((notes: QueuedNote[]) => {
      const bySession = new Map<string, QueuedNote[]>();
      for (const queued of notes) {
        const same = bySession.get(queued.id);
        if (same) same.push(queued);
        else bySession.set(queued.id, [queued]);
      }
      const noted = new Map<string, boolean>();
      for (const [id, same] of bySession) noted.set(id, noteAll(id, same));
      return notes.map((queued) => noted.get(queued.id) as boolean);
    }).immediate;
    this.putRecordTx = this.db.transaction(
      (key: string, value: string, expect: number, expiresAt: number | null, now: number) => {
        const row = stmt.recordGet.get(key) as { version: number; expires_at: number | null } | undefined;
        const version = row && (row.expires_at === null || row.expires_at > now) ? row.version : 0;
        if (version !== expect) return false;
        stmt.recordPut.run(key, expect + 1, value, expiresAt);
        return true;
      },
    ).immediate;
  }

  async openSession(
    id: string,
    request: SessionOpenRequest,
    limits: SessionLimits,
    now: number,
  ): Promise<SessionOpened> {
    return this.openTx(id, request, limits, now);
  }

  async readSession(
    id: string,
    after: number,
    limits: SessionLimits,
    now: number,
  ): Promise<SessionRead | undefined> {
    // Most reads find nothing new: one statement, in a read snapshot of its own, says so. A read
    // that must write (expired, or due a refresh) goes to `readTx`; entries to read with the row
    // need one snapshot for both.
    const row = this.sessionHead(id);
    if (!row) return undefined;
    if (row.expires_at - now < limits.ttlMs * 0.9) return this.readTx(id, after, limits, now);
    if (row.seq <= after) return sessionRead(row, []);
    const read = this.readOnlyTx(id, after, limits, now);
    return read === MUST_WRITE ? this.readTx(id, after, limits, now) : read;
  }

  /**
   * The session's head as the database holds it now: from the last read when nothing was committed
   * since (this read, before every decision, was the largest cost of a SQLite store in `serve`), else read.
   */
  private sessionHead(id: string): SessionHead | undefined {
    if (!this.commits?.unchanged()) this.heads.clear();
    let head = this.heads.get(id);
    if (head === undefined) {
      head = this.stmt.sessionHead.get(id) as SessionHead | undefined;
      if (head && this.commits) {
        if (this.heads.size >= MAX_HEADS_KEPT) this.heads.clear();
        this.heads.set(id, head);
      }
    }
    return head;
  }

  async appendSession(
    id: string,
    entries: string[],
    limits: SessionLimits,
    now: number,
  ): Promise<number | undefined> {
    return this.appendTx(id, entries, limits, now);
  }

  /**
   * Queued and written with every other note of the next NOTES_GATHER_MS in one transaction: a
   * commit per decision was most of the cost of a decision through `serve`, and at one decision
   * per turn of the event loop a commit per turn is one per decision. The counters are the
   * session's report only (the audit trail is the record): reading them here writes what is
   * queued first, and another replica or a crash sees them at most NOTES_GATHER_MS late.
   */
  noteSession(id: string, note: SessionNote, limits: SessionLimits, now: number): Promise<boolean> {
    return new Promise((resolve, reject) => {
      if (this.notes.push({ id, note, limits, now, resolve, reject }) === 1)
        this.notesTimer = setTimeout(() => this.writeNotes(), NOTES_GATHER_MS).unref();
    });
  }

  private writeNotes(): void {
    clearTimeout(this.notesTimer);
    const notes = this.notes;
    if (!notes.length) return;
    this.notes = [];
    let noted: boolean[];
    try {
      noted = this.notesTx(notes);
    } catch (error) {
      for (const queued of notes) queued.reject(error);
      return;
    }
    for (let i = 0; i < notes.length; i++) notes[i].resolve(noted[i]);
  }

  async sessionCounters(id: string, now: number): Promise<SessionCounters | undefined> {
    this.writeNotes();
    const row = this.stmt.sessionGet.get(id) as SessionRow | undefined;
    if (!row || row.expires_at <= now) return undefined;
    return {
      owner: row.owner ?? undefined,
      meta: row.meta ?? undefined,
      counts: JSON.parse(row.counts),
      blocked: JSON.parse(row.blocked),
    };
  }

  async endSession(id: string): Promise<void> {
    this.db
      .transaction(() => {
        this.stmt.sessionEntriesDelete.run(id);
        this.stmt.sessionDelete.run(id);
      })
      .immediate();
  }

  async countSessions(now: number, owner?: string): Promise<number> {
    return (
      owner === undefined ? this.stmt.sessionCount.get(now) : this.stmt.sessionCountOwner.get(owner, now)
    ) as number;
  }

  async getRecord(key: string, now: number): Promise<StoredRecord | undefined> {
    const row = this.stmt.recordGet.get(key) as
      | { version: number; value: string; expires_at: number | null }
      | undefined;
    if (!row || (row.expires_at !== null && row.expires_at <= now)) return undefined;
    return { value: row.value, version: row.version };
  }

  async putRecord(
    key: string,
    value: string,
    expect: number,
    expiresAt: number | null,
    now: number,
  ): Promise<boolean> {
    return this.putRecordTx(key, value, expect, expiresAt, now);
  }

  async deleteRecord(key: string): Promise<void> {
    this.stmt.recordDelete.run(key);
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
    if (!this.db.open) return;
    this.writeNotes();
    this.db.close();
    this.commits?.close();
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
    sessionGet: db.prepare(
      "SELECT owner, meta, seq, bytes, overflow, expires_at, counts, blocked FROM tw_session WHERE id = ?",
    ),
    sessionHead: db.prepare("SELECT owner, meta, seq, expires_at FROM tw_session WHERE id = ?"),
    sessionTouch: db.prepare("UPDATE tw_session SET expires_at = ? WHERE id = ?"),
    sessionInsert: db.prepare(
      "INSERT INTO tw_session (id, owner, meta, seq, bytes, overflow, expires_at, counts, blocked) VALUES (?, ?, ?, 0, 0, 0, ?, '{}', '[]')",
    ),
    sessionDelete: db.prepare("DELETE FROM tw_session WHERE id = ?"),
    sessionEntriesDelete: db.prepare("DELETE FROM tw_session_entry WHERE session = ?"),
    sessionSweepEntries: db.prepare(
      "DELETE FROM tw_session_entry WHERE session IN (SELECT id FROM tw_session WHERE expires_at <= ?)",
    ),
    sessionSweep: db.prepare("DELETE FROM tw_session WHERE expires_at <= ?"),
    sessionCount: db.prepare("SELECT count(*) FROM tw_session WHERE expires_at > ?").pluck(),
    sessionCountOwner: db
      .prepare("SELECT count(*) FROM tw_session WHERE owner = ? AND expires_at > ?")
      .pluck(),
    sessionEntries: db
      .prepare("SELECT data FROM tw_session_entry WHERE session = ? AND seq > ? ORDER BY seq")
      .pluck(),
    sessionEntryAdd: db.prepare("INSERT INTO tw_session_entry (session, seq, data) VALUES (?, ?, ?)"),
    sessionGrow: db.prepare(
      "UPDATE tw_session SET seq = ?, bytes = bytes + ?, overflow = max(overflow, ?) WHERE id = ?",
    ),
    sessionNote: db.prepare("UPDATE tw_session SET counts = ?, blocked = ?, expires_at = ? WHERE id = ?"),
    sessionCounts: db.prepare("UPDATE tw_session SET counts = ?, blocked = ? WHERE id = ?"),
    recordGet: db.prepare("SELECT version, value, expires_at FROM tw_record WHERE key = ?"),
    recordPut: db.prepare(
      "INSERT INTO tw_record (key, version, value, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET version = excluded.version, value = excluded.value, expires_at = excluded.expires_at",
    ),
    recordDelete: db.prepare("DELETE FROM tw_record WHERE key = ?"),
    approvalsForget: db.prepare(
      "DELETE FROM tw_approval WHERE status IN ('denied', 'expired', 'used') AND expires_at <= ?",
    ),
  };
}
