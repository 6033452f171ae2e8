/** One counter a call is counted in, e.g. `limit:http-rate:agent:bot-1`. */
export interface LimitBucket {
  key: string;
  /** Most calls allowed in the window. */
  limit: number;
  /**
   * Sliding window length in ms; 0 means a total with no window (`max: 5`). A call counted at `t`
   * stays in the window while `now - t < windowMs`: a call exactly `windowMs` later no longer sees it.
   */
  windowMs: number;
}

/** A bucket that had no room for the call. */
export interface LimitTrip {
  key: string;
  limit: number;
  /** Calls counted in the window when the call was refused. */
  count: number;
  /** When the oldest counted call leaves the window (epoch ms); null for totals. */
  resetAt: number | null;
}

export interface SpendRequest {
  key: string;
  amount: number;
  max: number;
}

export interface SpendResult {
  ok: boolean;
  /** Total spent after this request (unchanged when refused). */
  spent: number;
  remaining: number;
}

export type ApprovalStatus = "pending" | "approved" | "denied" | "expired" | "used";

/** A pending or decided human approval, bound to one exact call by `callHash`. */
export interface Approval {
  id: string;
  status: ApprovalStatus;
  /** SHA-256 of the canonical JSON of {tool, args, server, agent id, session}. */
  callHash: string;
  tool: string;
  server?: string;
  agent?: string;
  session?: string;
  rule: string | null;
  reason: string;
  /** Redacted summary of the arguments for the approver. */
  argsSummary: string;
  createdAt: number;
  expiresAt: number;
  decidedAt?: number;
  decidedBy?: string;
  decisionReason?: string;
}

/** Bounds a store applies to sessions. */
export interface SessionLimits {
  /** Idle expiry (ms): a session nobody read or wrote for this long is gone, with its owner. */
  ttlMs: number;
  /** Most live sessions in the store; opening one more is refused. */
  maxSessions: number;
  /** Most live sessions one owner (agent) may hold. */
  maxPerOwner: number;
  /** Bound on a session's log (UTF-8 bytes of its entries); past it the store appends {@link SESSION_OVERFLOW} instead. */
  maxBytes: number;
}

/** The entry a store appends, once, when a session's log would pass `maxBytes`: flow checks then fail closed. */
export const SESSION_OVERFLOW = '{"k":"o"}';

/** Who opens a session: the owner is fixed by the first open and lives as long as the session. */
export interface SessionOpenRequest {
  owner?: string;
  /** Opaque JSON the first opener stores with the session (agent attributes, task). */
  meta?: string;
}

export type SessionOpened =
  | { ok: true; created: boolean; owner?: string; meta?: string }
  | { ok: false; reason: string };

/** A session's log after `after`: entries `after + 1 .. seq`, in order. */
export interface SessionRead {
  owner?: string;
  meta?: string;
  seq: number;
  entries: string[];
}

/** One decision counted for a session's report. */
export interface SessionNote {
  tool: string;
  verdict: "allow" | "flag" | "ask" | "deny";
  /** JSON of a flow that was blocked ({tool, rule, labels}); the store keeps the most recent. */
  blocked?: string;
}

export interface SessionCounters {
  owner?: string;
  meta?: string;
  /** `verdict` and `tool\u0000verdict` counts. */
  counts: Record<string, number>;
  blocked: string[];
}

/** A small versioned record (plan state, a shared secret): written only by compare-and-set. */
export interface StoredRecord {
  value: string;
  version: number;
}

/** How many blocked flows a session's report keeps. */
export const MAX_BLOCKED_KEPT = 256;

/**
 * Shared state behind one interface: limits, budgets, approvals and the labels a session has seen.
 * Memory (default), SQLite (one host, survives restarts) and Redis (many replicas) implement it;
 * every operation that decides is atomic, so two replicas never over-count or over-spend.
 */
export interface StateStore {
  readonly kind: string;
  /** Atomically: if every bucket has room, count the call in all of them and return []; else count nothing and return the full ones. */
  consume(buckets: LimitBucket[], now: number): Promise<LimitTrip[]>;
  /** The buckets that would refuse a call now, counting nothing. */
  peek(buckets: LimitBucket[], now: number): Promise<LimitTrip[]>;
  /** Atomically add `amount` to `key` unless the total would exceed `max`. */
  spend(request: SpendRequest): Promise<SpendResult>;
  spent(key: string): Promise<number>;
  /** Adds labels to the set a session has seen; returns the whole set. */
  addSeen(session: string, labels: string[]): Promise<string[]>;
  seen(session: string): Promise<string[]>;
  putApproval(approval: Approval): Promise<void>;
  getApproval(id: string): Promise<Approval | undefined>;
  listApprovals(filter?: { status?: ApprovalStatus }): Promise<Approval[]>;
  /** Atomically moves a pending, unexpired approval to approved or denied; undefined if it was not pending. */
  decideApproval(
    id: string,
    status: "approved" | "denied",
    by: string,
    reason: string | undefined,
    now: number,
  ): Promise<Approval | undefined>;
  /** Atomically marks an approved, unexpired approval for `callHash` as used and returns it (single use). */
  useApproval(callHash: string, now: number): Promise<Approval | undefined>;
  /**
   * Marks every pending or approved approval whose `expiresAt <= now` as expired and returns them
   * (so the caller can audit the timeouts); also forgets finished approvals that expired more than
   * the store's retention ago. Expiry also happens lazily in `decideApproval` and `useApproval`.
   */
  expireApprovals(now: number): Promise<Approval[]>;
  /**
   * Opens a session, or joins it if it lives: creating one is refused past `maxSessions` in the
   * store or `maxPerOwner` for its owner. Joining returns the first opener's owner and meta and,
   * like every session operation, counts as activity (the idle expiry restarts).
   */
  openSession(
    id: string,
    request: SessionOpenRequest,
    limits: SessionLimits,
    now: number,
  ): Promise<SessionOpened>;
  /** The session's entries after `after`, in one round trip; undefined when it does not live. */
  readSession(
    id: string,
    after: number,
    limits: SessionLimits,
    now: number,
  ): Promise<SessionRead | undefined>;
  /**
   * Appends entries atomically (all or none); past `maxBytes` appends SESSION_OVERFLOW once instead.
   * Returns the new last sequence number, or undefined when the session does not live.
   */
  appendSession(
    id: string,
    entries: string[],
    limits: SessionLimits,
    now: number,
  ): Promise<number | undefined>;
  /** Counts a decision in the session's report; false when the session does not live. */
  noteSession(id: string, note: SessionNote, limits: SessionLimits, now: number): Promise<boolean>;
  /** The report counters; undefined when the session does not live. Not activity. */
  sessionCounters(id: string, now: number): Promise<SessionCounters | undefined>;
  /** Forgets a session and everything in it. */
  endSession(id: string): Promise<void>;
  /** Live sessions in the store, or of one owner. */
  countSessions(now: number, owner?: string): Promise<number>;
  getRecord(key: string, now: number): Promise<StoredRecord | undefined>;
  /**
   * Writes `value` if the record's version is `expect` (0: it must not exist or have expired);
   * the new version is `expect + 1`. `expiresAt` (epoch ms) or null for no expiry.
   */
  putRecord(
    key: string,
    value: string,
    expect: number,
    expiresAt: number | null,
    now: number,
  ): Promise<boolean>;
  deleteRecord(key: string): Promise<void>;
  close(): Promise<void>;
}
