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
  close(): Promise<void>;
}
