import {
  MAX_BLOCKED_KEPT,
  SESSION_OVERFLOW,
  type SessionCounters,
  type SessionLimits,
  type SessionNote,
  type SessionOpened,
  type SessionOpenRequest,
  type SessionRead,
  type StoredRecord,
} from "../types.js";

interface MemorySession {
  owner?: string;
  meta?: string;
  entries: string[];
  bytes: number;
  overflowed: boolean;
  expiresAt: number;
  counts: Map<string, number>;
  blocked: string[];
}

/**
 * Sessions and versioned records of the memory store, with synchronous operations so a Warden on
 * the memory store decides without awaiting anything. Expired sessions are dropped when touched
 * and swept when a cap is reached, so their memory is returned.
 */
export class MemorySessions {
  private readonly sessions = new Map<string, MemorySession>();
  private readonly byOwner = new Map<string, Set<string>>();
  private readonly records = new Map<string, StoredRecord & { expiresAt: number | null }>();
  private lastSweep = Number.NEGATIVE_INFINITY;

  open(id: string, request: SessionOpenRequest, limits: SessionLimits, now: number): SessionOpened {
    const live = this.live(id, now);
    if (live) {
      this.touch(live, limits, now);
      return { ok: true, created: false, owner: live.owner, meta: live.meta };
    }
    if (this.sessions.size >= limits.maxSessions || now - this.lastSweep > limits.ttlMs) this.sweep(now);
    if (this.sessions.size >= limits.maxSessions) {
      return { ok: false, reason: `the store holds ${this.sessions.size} live sessions, its limit` };
    }
    const owner = request.owner || undefined;
    if (owner !== undefined) {
      const owned = this.byOwner.get(owner);
      if (owned && owned.size >= limits.maxPerOwner) {
        for (const other of owned) this.live(other, now);
        if (owned.size >= limits.maxPerOwner) {
          return { ok: false, reason: `agent \`${owner}\` holds ${owned.size} live sessions, its limit` };
        }
      }
    }
    const session: MemorySession = {
      owner,
      meta: request.meta,
      entries: [],
      bytes: 0,
      overflowed: false,
      expiresAt: now + limits.ttlMs,
      counts: new Map(),
      blocked: [],
    };
    this.sessions.set(id, session);
    if (owner !== undefined) {
      let owned = this.byOwner.get(owner);
      if (!owned) this.byOwner.set(owner, (owned = new Set()));
      owned.add(id);
    }
    return { ok: true, created: true, owner, meta: request.meta };
  }

  read(id: string, after: number, limits: SessionLimits, now: number): SessionRead | undefined {
    const session = this.live(id, now);
    if (!session) return undefined;
    this.touch(session, limits, now);
    const seq = session.entries.length;
    return {
      owner: session.owner,
      meta: session.meta,
      seq,
      entries: after >= seq ? [] : session.entries.slice(Math.max(0, after)),
    };
  }

  append(id: string, entries: string[], limits: SessionLimits, now: number): number | undefined {
    const session = this.live(id, now);
    if (!session) return undefined;
    this.touch(session, limits, now);
    if (session.overflowed) return session.entries.length;
    let size = 0;
    for (const entry of entries) size += Buffer.byteLength(entry);
    if (session.bytes + size > limits.maxBytes) {
      session.overflowed = true;
      session.entries.push(SESSION_OVERFLOW);
    } else {
      session.bytes += size;
      for (const entry of entries) session.entries.push(entry);
    }
    return session.entries.length;
  }

  note(id: string, note: SessionNote, limits: SessionLimits, now: number): boolean {
    const session = this.live(id, now);
    if (!session) return false;
    this.touch(session, limits, now);
    const { counts } = session;
    counts.set(note.verdict, (counts.get(note.verdict) ?? 0) + 1);
    const key = `${note.tool}\u0000${note.verdict}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    if (note.blocked !== undefined) {
      session.blocked.push(note.blocked);
      if (session.blocked.length > MAX_BLOCKED_KEPT) session.blocked.shift();
    }
    return true;
  }

  counters(id: string, now: number): SessionCounters | undefined {
    const session = this.live(id, now);
    if (!session) return undefined;
    return {
      owner: session.owner,
      meta: session.meta,
      counts: Object.fromEntries(session.counts),
      blocked: [...session.blocked],
    };
  }

  end(id: string): void {
    const session = this.sessions.get(id);
    if (!session) return;
    this.sessions.delete(id);
    if (session.owner !== undefined) {
      const owned = this.byOwner.get(session.owner);
      owned?.delete(id);
      if (owned?.size === 0) this.byOwner.delete(session.owner);
    }
  }

  count(now: number, owner?: string): number {
    this.sweep(now);
    return owner === undefined ? this.sessions.size : (this.byOwner.get(owner)?.size ?? 0);
  }

  getRecord(key: string, now: number): StoredRecord | undefined {
    const record = this.records.get(key);
    if (!record) return undefined;
    if (record.expiresAt !== null && record.expiresAt <= now) {
      this.records.delete(key);
      return undefined;
    }
    return { value: record.value, version: record.version };
  }

  putRecord(key: string, value: string, expect: number, expiresAt: number | null, now: number): boolean {
    const version = this.getRecord(key, now)?.version ?? 0;
    if (version !== expect) return false;
    this.records.set(key, { value, version: expect + 1, expiresAt });
    return true;
  }

  deleteRecord(key: string): void {
    this.records.delete(key);
  }

  private live(id: string, now: number): MemorySession | undefined {
    const session = this.sessions.get(id);
    if (session && session.expiresAt <= now) {
      this.end(id);
      return undefined;
    }
    return session;
  }

  private touch(session: MemorySession, limits: SessionLimits, now: number): void {
    session.expiresAt = now + limits.ttlMs;
  }

  private sweep(now: number): void {
    for (const [id, session] of this.sessions) if (session.expiresAt <= now) this.end(id);
    this.lastSweep = now;
  }
}
