import { copyApproval, DEFAULT_APPROVAL_RETENTION_MS, isExpired, isFinished } from "../approval.js";
import { fromMicros, maxToMicros, toMicros } from "../micros.js";
import type {
  Approval,
  ApprovalStatus,
  LimitBucket,
  LimitTrip,
  SpendRequest,
  SessionCounters,
  SessionLimits,
  SessionNote,
  SessionOpened,
  SessionOpenRequest,
  SessionRead,
  SpendResult,
  StateStore,
  StoredRecord,
} from "../types.js";
import { MemorySessions } from "./memory-sessions.js";

/** Options for {@link MemoryStateStore}. */
export interface MemoryStateStoreOptions {
  /** How long finished approvals are kept after expiry (default 7 days). */
  approvalRetentionMs?: number;
  /** Idle sliding windows are dropped at most this often, in `now` time (default 60 s). */
  sweepIntervalMs?: number;
}

/**
 * The timestamps counted in one sliding window, oldest first, in a ring buffer. A bucket never
 * holds more than `limit` calls, so the buffer grows (by doubling) to at most twice that and then
 * a call allocates nothing.
 */
interface WindowLog {
  times: Float64Array;
  head: number;
  size: number;
  windowMs: number;
}

// Small start: a `rate: 100000/day` bucket with a few calls should not hold 800 kB.
const INITIAL_CAPACITY = 8;

/** Drops the calls at or before `cutoff`: a call at `t` counts while `now - t < windowMs`. */
function prune(log: WindowLog, cutoff: number): void {
  const { times } = log;
  while (log.size > 0 && times[log.head] <= cutoff) {
    log.head = log.head + 1 === times.length ? 0 : log.head + 1;
    log.size--;
  }
}

function push(log: WindowLog, time: number): void {
  if (log.size === log.times.length) {
    const grown = new Float64Array(log.times.length * 2);
    for (let i = 0; i < log.size; i++) grown[i] = log.times[(log.head + i) % log.times.length];
    log.times = grown;
    log.head = 0;
  }
  log.times[(log.head + log.size) % log.times.length] = time;
  log.size++;
}

function newest(log: WindowLog): number {
  return log.times[(log.head + log.size - 1) % log.times.length];
}

/**
 * The embedded default store: everything in this process's memory, lost on exit. Sliding
 * windows are exact logs of call times; totals, spend and seen labels are kept until the store is
 * dropped. Operations run synchronously inside their promise, so each one is atomic.
 */
export class MemoryStateStore implements StateStore {
  readonly kind = "memory";
  private readonly windows = new Map<string, WindowLog>();
  private readonly totals = new Map<string, number>();
  private readonly spends = new Map<string, number>();
  private readonly sessions = new Map<string, Set<string>>();
  private readonly approvals = new Map<string, Approval>();
  private readonly approvalsByHash = new Map<string, Set<string>>();
  private readonly retentionMs: number;
  private readonly sweepIntervalMs: number;
  private lastSweep = Number.NEGATIVE_INFINITY;
  private sweepAtSize = 1024;
  /** The session operations, synchronous: a Warden on this store calls them without awaiting. */
  readonly immediate = new MemorySessions();

  constructor(options: MemoryStateStoreOptions = {}) {
    this.retentionMs = options.approvalRetentionMs ?? DEFAULT_APPROVAL_RETENTION_MS;
    this.sweepIntervalMs = options.sweepIntervalMs ?? 60_000;
  }

  async consume(buckets: LimitBucket[], now: number): Promise<LimitTrip[]> {
    const trips = this.check(buckets, now);
    if (trips.length > 0) return trips;
    for (const bucket of buckets) {
      if (bucket.windowMs > 0) {
        let log = this.windows.get(bucket.key);
        if (log === undefined) {
          log = { times: new Float64Array(INITIAL_CAPACITY), head: 0, size: 0, windowMs: 0 };
          this.windows.set(bucket.key, log);
        }
        log.windowMs = bucket.windowMs;
        push(log, now);
      } else {
        this.totals.set(bucket.key, (this.totals.get(bucket.key) ?? 0) + 1);
      }
    }
    if (now - this.lastSweep >= this.sweepIntervalMs || this.windows.size > this.sweepAtSize) this.sweep(now);
    return trips;
  }

  async peek(buckets: LimitBucket[], now: number): Promise<LimitTrip[]> {
    return this.check(buckets, now);
  }

  private check(buckets: LimitBucket[], now: number): LimitTrip[] {
    const trips: LimitTrip[] = [];
    for (const bucket of buckets) {
      if (bucket.windowMs > 0) {
        const log = this.windows.get(bucket.key);
        if (log !== undefined) prune(log, now - bucket.windowMs);
        const count = log?.size ?? 0;
        if (count >= bucket.limit) {
          const resetAt = log !== undefined && count > 0 ? log.times[log.head] + bucket.windowMs : null;
          trips.push({ key: bucket.key, limit: bucket.limit, count, resetAt });
        }
      } else {
        const count = this.totals.get(bucket.key) ?? 0;
        if (count >= bucket.limit) trips.push({ key: bucket.key, limit: bucket.limit, count, resetAt: null });
      }
    }
    return trips;
  }

  /** Forgets windows whose every call has left; amortised by time and by map growth. */
  private sweep(now: number): void {
    for (const [key, log] of this.windows) {
      if (log.size === 0 || newest(log) <= now - log.windowMs) this.windows.delete(key);
    }
    this.lastSweep = now;
    this.sweepAtSize = Math.max(1024, this.windows.size * 2);
  }

  async spend(request: SpendRequest): Promise<SpendResult> {
    const current = this.spends.get(request.key) ?? 0;
    const amount = toMicros(request.amount);
    const max = maxToMicros(request.max);
    if (Number.isNaN(amount) || current + amount > max) {
      return { ok: false, spent: fromMicros(current), remaining: fromMicros(Math.max(0, max - current)) };
    }
    const total = current + amount;
    this.spends.set(request.key, total);
    return { ok: true, spent: fromMicros(total), remaining: fromMicros(max - total) };
  }

  async spent(key: string): Promise<number> {
    return fromMicros(this.spends.get(key) ?? 0);
  }

  async addSeen(session: string, labels: string[]): Promise<string[]> {
    let set = this.sessions.get(session);
    if (set === undefined) {
      if (labels.length === 0) return [];
      set = new Set();
      this.sessions.set(session, set);
    }
    for (const label of labels) set.add(label);
    return [...set];
  }

  async seen(session: string): Promise<string[]> {
    const set = this.sessions.get(session);
    return set === undefined ? [] : [...set];
  }

  async putApproval(approval: Approval): Promise<void> {
    const previous = this.approvals.get(approval.id);
    if (previous !== undefined) this.approvalsByHash.get(previous.callHash)?.delete(previous.id);
    this.approvals.set(approval.id, copyApproval(approval));
    let ids = this.approvalsByHash.get(approval.callHash);
    if (ids === undefined) {
      ids = new Set();
      this.approvalsByHash.set(approval.callHash, ids);
    }
    ids.add(approval.id);
  }

  async getApproval(id: string): Promise<Approval | undefined> {
    const approval = this.approvals.get(id);
    return approval === undefined ? undefined : copyApproval(approval);
  }

  async listApprovals(filter: { status?: ApprovalStatus } = {}): Promise<Approval[]> {
    const out: Approval[] = [];
    for (const approval of this.approvals.values()) {
      if (filter.status === undefined || approval.status === filter.status) out.push(copyApproval(approval));
    }
    return out.sort((a, b) => a.createdAt - b.createdAt);
  }

  async decideApproval(
    id: string,
    status: "approved" | "denied",
    by: string,
    reason: string | undefined,
    now: number,
  ): Promise<Approval | undefined> {
    const approval = this.approvals.get(id);
    if (approval === undefined || approval.status !== "pending") return undefined;
    if (isExpired(approval, now)) {
      approval.status = "expired";
      return undefined;
    }
    approval.status = status;
    approval.decidedAt = now;
    approval.decidedBy = by;
    if (reason !== undefined) approval.decisionReason = reason;
    return copyApproval(approval);
  }

  async useApproval(callHash: string, now: number): Promise<Approval | undefined> {
    const ids = this.approvalsByHash.get(callHash);
    if (ids === undefined) return undefined;
    let chosen: Approval | undefined;
    for (const id of ids) {
      const approval = this.approvals.get(id);
      if (approval === undefined || approval.status !== "approved") continue;
      if (isExpired(approval, now)) {
        approval.status = "expired";
        continue;
      }
      if (chosen === undefined || approval.createdAt < chosen.createdAt) chosen = approval;
    }
    if (chosen === undefined) return undefined;
    chosen.status = "used";
    return copyApproval(chosen);
  }

  async expireApprovals(now: number): Promise<Approval[]> {
    const expired: Approval[] = [];
    for (const approval of this.approvals.values()) {
      if ((approval.status === "pending" || approval.status === "approved") && isExpired(approval, now)) {
        approval.status = "expired";
        expired.push(copyApproval(approval));
      } else if (isFinished(approval.status) && approval.expiresAt + this.retentionMs <= now) {
        this.approvals.delete(approval.id);
        const ids = this.approvalsByHash.get(approval.callHash);
        ids?.delete(approval.id);
        if (ids?.size === 0) this.approvalsByHash.delete(approval.callHash);
      }
    }
    return expired;
  }

  async openSession(
    id: string,
    request: SessionOpenRequest,
    limits: SessionLimits,
    now: number,
  ): Promise<SessionOpened> {
    return this.immediate.open(id, request, limits, now);
  }

  async readSession(
    id: string,
    after: number,
    limits: SessionLimits,
    now: number,
  ): Promise<SessionRead | undefined> {
    return this.immediate.read(id, after, limits, now);
  }

  async appendSession(
    id: string,
    entries: string[],
    limits: SessionLimits,
    now: number,
  ): Promise<number | undefined> {
    return this.immediate.append(id, entries, limits, now);
  }

  async noteSession(id: string, note: SessionNote, limits: SessionLimits, now: number): Promise<boolean> {
    return this.immediate.note(id, note, limits, now);
  }

  async sessionCounters(id: string, now: number): Promise<SessionCounters | undefined> {
    return this.immediate.counters(id, now);
  }

  async endSession(id: string): Promise<void> {
    this.immediate.end(id);
  }

  async countSessions(now: number, owner?: string): Promise<number> {
    return this.immediate.count(now, owner);
  }

  async getRecord(key: string, now: number): Promise<StoredRecord | undefined> {
    return this.immediate.getRecord(key, now);
  }

  async putRecord(
    key: string,
    value: string,
    expect: number,
    expiresAt: number | null,
    now: number,
  ): Promise<boolean> {
    return this.immediate.putRecord(key, value, expect, expiresAt, now);
  }

  async deleteRecord(key: string): Promise<void> {
    this.immediate.deleteRecord(key);
  }

  async close(): Promise<void> {}
}
