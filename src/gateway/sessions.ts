import type { Agent, Verdict } from "../core/index.js";
import { ToolwardenError } from "../core/index.js";
import type { MemorySessions } from "../stores/memory/memory-sessions.js";
import type { SessionLimits, StateStore } from "../stores/types.js";
import { Session } from "./session.js";
import type { SessionEntry, SessionOptions, SessionReport } from "./session.js";

/** Bounds on sessions, applied by the state store (so every replica applies the same ones). */
export interface SessionBounds {
  /** Idle expiry (ms): a session nobody used for this long is forgotten everywhere. Default 24 hours. */
  ttlMs?: number;
  /** Most live sessions in the store. Default 100,000. */
  maxSessions?: number;
  /** Most live sessions one agent may hold, so one agent cannot exhaust everyone's. Default 1,000. */
  maxPerAgent?: number;
  /** Sessions this process keeps rebuilt in memory; others are rebuilt from the store on use. Default 10,000. */
  cached?: number;
}

/** A session could not be opened: a cap was reached. The call is denied with this reason. */
export class SessionRefusedError extends ToolwardenError {
  constructor(message: string) {
    super("session_refused", message);
  }
}

interface Held {
  session: Session;
  /** Opened in the store by this process since the session was (re)created here. */
  opened: boolean;
  /** Writes not yet durable in the store, in order; each is one atomic append. */
  unsent: string[][];
  /** Reads and writes of this session run one after another. */
  chain: Promise<unknown>;
  /** Settles once the report counters sent so far are in the store. */
  notes: Promise<unknown>;
  /** When this process last used it (its `now`). */
  used: number;
  /** The agent of the latest caller: the owner if the session must be opened anew. */
  opener?: Agent;
}

const DEFAULTS = { ttlMs: 24 * 60 * 60_000, maxSessions: 100_000, maxPerAgent: 1_000, cached: 10_000 };

/**
 * The sessions of one Warden, kept in the state store: a session is an append-only log there
 * (labelled content, value sets), and this process holds a rebuilt copy that it brings up to date
 * before each decision with one read of what was appended since (one round trip; nothing when
 * the store is in memory). Writes (outputs, inputs) go to the store first and are applied here
 * when durable, so a restart, another replica and this process all see the same session.
 * A write the store could not take is kept and sent again before the session's next decision;
 * until it is durable, decisions in that session fail closed.
 */
export class SessionManager {
  readonly limits: SessionLimits;
  private readonly held = new Map<string, Held>();
  private readonly cached: number;
  private readonly immediate: MemorySessions | undefined;

  constructor(
    private readonly store: StateStore,
    bounds: SessionBounds & { maxBytes: number },
    private readonly make: (options: SessionOptions) => Session,
    private readonly now: () => number,
  ) {
    this.limits = {
      ttlMs: bounds.ttlMs ?? DEFAULTS.ttlMs,
      maxSessions: bounds.maxSessions ?? DEFAULTS.maxSessions,
      maxPerOwner: bounds.maxPerAgent ?? DEFAULTS.maxPerAgent,
      maxBytes: bounds.maxBytes,
    };
    this.cached = bounds.cached ?? DEFAULTS.cached;
    const immediate = (store as { immediate?: MemorySessions }).immediate;
    this.immediate = store.kind === "memory" ? immediate : undefined;
  }

  /** Sessions rebuilt in this process's memory. */
  get size(): number {
    return this.held.size;
  }

  /** This process's copy of a session (created empty when new here); the store is not asked. */
  local(options: { id: string; agent?: Agent; task?: string }, existing?: Session): Session {
    let held = this.held.get(options.id);
    if (held) {
      // Most recently used last, so eviction takes the least recently used.
      this.held.delete(options.id);
      this.held.set(options.id, held);
      held.used = this.now();
      return held.session;
    }
    // A copy the host still holds after eviction is taken back as it is (the store has the rest).
    const session =
      existing?.id === options.id
        ? existing
        : this.make({ id: options.id, agent: options.agent, task: options.task });
    session.writer = (target, entries) => this.write(target, entries);
    held = {
      session,
      opened: false,
      unsent: [],
      chain: Promise.resolve(),
      notes: Promise.resolve(),
      used: this.now(),
    };
    this.held.set(options.id, held);
    this.evict();
    return session;
  }

  /** The copy held here, if any. */
  peek(id: string): Session | undefined {
    return this.held.get(id)?.session;
  }

  /**
   * The session brought up to date with the store: opened there on first use (the first opener
   * owns it; caps apply), unsent writes sent, entries appended elsewhere applied. Synchronous
   * when the store is in memory. Throws `SessionRefusedError` past a cap, and the store's error
   * when it fails (the caller denies).
   */
  ready(
    options: { id: string; agent?: Agent; task?: string },
    existing?: Session,
  ): Session | Promise<Session> {
    const session = this.local(options, existing);
    const held = this.held.get(options.id)!;
    // Who opens it if it must be opened (anew after an expiry): the caller, not an earlier one.
    if (options.agent) held.opener = options.agent;
    if (this.immediate) {
      this.syncImmediate(held, this.immediate);
      return session;
    }
    return this.enqueue(held, () => this.sync(held));
  }

  /** Waits until every write of the session made so far is durable; throws the store's error otherwise. */
  async flush(id: string): Promise<void> {
    const held = this.held.get(id);
    if (!held || this.immediate) return;
    await this.enqueue(held, () => this.drain(held));
  }

  /** Waits for every pending write and report counter of every session (before closing the store). */
  async flushAll(): Promise<void> {
    await Promise.allSettled([...this.held.values()].flatMap((held) => [held.chain, held.notes]));
    await Promise.allSettled(
      [...this.held.values()].filter((held) => held.unsent.length).map((held) => this.flush(held.session.id)),
    );
  }

  /** Counts a decision for the session's report (in the store; not awaited by the decision). */
  note(
    session: Session,
    tool: string,
    verdict: Verdict,
    blocked?: { tool: string; rule: string | null; labels: string[] },
  ): void {
    const note = { tool, verdict, blocked: blocked && JSON.stringify(blocked) };
    if (this.immediate) {
      this.immediate.note(session.id, note, this.limits, this.now());
      return;
    }
    const held = this.held.get(session.id);
    if (!held) return;
    // Sent at once, not after the previous note: a store that batches (SQLite) writes the notes
    // of concurrent decisions together; the store keeps their order.
    const sent = this.store
      .noteSession(session.id, note, this.limits, this.now())
      .catch((error: Error) =>
        process.emitWarning(`toolwarden: a session report counter was not stored: ${error.message}`),
      );
    held.notes = Promise.all([held.notes, sent]);
  }

  /** The report from the store's counters; undefined when the session does not live. */
  async report(
    id: string,
    budget: { max: number; per: string } | undefined,
  ): Promise<SessionReport | undefined> {
    const held = this.held.get(id);
    if (held) await held.notes;
    const counters = await this.store.sessionCounters(id, this.now());
    if (!counters) return undefined;
    const meta = parseMeta(counters.meta);
    const session = await this.ready({ id, agent: meta.agent, task: meta.task });
    const verdicts: Record<Verdict, number> = { allow: 0, flag: 0, ask: 0, deny: 0 };
    const tools: Record<string, Record<Verdict, number>> = {};
    for (const [key, count] of Object.entries(counters.counts)) {
      const cut = key.lastIndexOf("\u0000");
      if (cut < 0) {
        if (key in verdicts) verdicts[key as Verdict] = count;
        continue;
      }
      const tool = key.slice(0, cut);
      const verdict = key.slice(cut + 1) as Verdict;
      tools[tool] ??= { allow: 0, flag: 0, ask: 0, deny: 0 };
      if (verdict in verdicts) tools[tool][verdict] = count;
    }
    const spend = budget?.per === "session" ? await this.store.spent(`spend:session=${id}`) : 0;
    return {
      session: id,
      agent: counters.owner,
      calls: verdicts.allow + verdicts.flag + verdicts.ask + verdicts.deny,
      verdicts,
      tools,
      deniedTools: Object.entries(tools)
        .filter(([, v]) => v.deny > 0)
        .map(([tool]) => tool),
      spend,
      budget: budget && { max: budget.max, remaining: Math.max(0, budget.max - spend) },
      labelsSeen: [...session.seen],
      flowsBlocked: counters.blocked.map((text) => JSON.parse(text)),
    };
  }

  /** Ends a session everywhere: the store forgets it and this process drops its copy. */
  end(id: string): Promise<void> {
    const held = this.held.get(id);
    this.held.delete(id);
    if (held) held.session.writer = undefined;
    if (this.immediate) {
      this.immediate.end(id);
      return Promise.resolve();
    }
    return this.store.endSession(id);
  }

  /** Drops this process's copy only (the store keeps the session). */
  forget(id: string): void {
    this.held.delete(id);
  }

  private write(session: Session, entries: SessionEntry[]): void {
    this.local({ id: session.id }, session);
    const held = this.held.get(session.id)!;
    held.unsent.push(entries.map((entry) => JSON.stringify(entry)));
    if (this.immediate) {
      this.syncImmediate(held, this.immediate);
      return;
    }
    // Sent now; a failure is kept and retried before the session's next decision.
    this.enqueue(held, () => this.drain(held)).catch(() => {});
  }

  private enqueue<T>(held: Held, op: () => Promise<T>): Promise<T> {
    const run = held.chain.then(op);
    held.chain = run.catch(() => {});
    return run;
  }

  private open(
    held: Held,
    opened: { ok: true; owner?: string; meta?: string } | { ok: false; reason: string },
  ): void {
    if (!opened.ok) throw new SessionRefusedError(`session \`${held.session.id}\` refused: ${opened.reason}`);
    held.opened = true;
    const { session } = held;
    session.owner = opened.owner;
    const meta = parseMeta(opened.meta);
    if (meta.agent && Object.keys(session.agent).length === 0) session.agent = meta.agent;
    if (meta.task !== undefined && session.task === undefined) session.task = meta.task;
  }

  private request(held: Held): { owner?: string; meta: string } {
    const { session } = held;
    if (Object.keys(session.agent).length === 0 && held.opener) session.agent = held.opener;
    const owner = typeof session.agent.id === "string" ? session.agent.id : undefined;
    return { owner, meta: JSON.stringify({ agent: session.agent, task: session.task }) };
  }

  private syncImmediate(held: Held, store: MemorySessions): void {
    const now = this.now();
    const { session } = held;
    if (!held.opened) this.open(held, store.open(session.id, this.request(held), this.limits, now));
    for (let attempt = 0; ; attempt++) {
      while (held.unsent.length) {
        if (store.append(session.id, held.unsent[0], this.limits, now) === undefined) break;
        held.unsent.shift();
      }
      const read = store.read(session.id, session.seq, this.limits, now);
      if (read && !held.unsent.length) {
        this.applyRead(session, read.entries);
        return;
      }
      // Expired (or ended elsewhere) since this process last used it: start afresh.
      if (attempt > 0) throw new SessionRefusedError(`session \`${session.id}\` could not be reopened`);
      this.restart(held);
      this.open(held, store.open(session.id, this.request(held), this.limits, now));
    }
  }

  private async sync(held: Held): Promise<Session> {
    await this.drain(held);
    const { session } = held;
    let read = await this.store.readSession(session.id, session.seq, this.limits, this.now());
    if (!read) {
      this.restart(held);
      await this.openNow(held);
      await this.drain(held);
      read = await this.store.readSession(session.id, 0, this.limits, this.now());
      if (!read) throw new SessionRefusedError(`session \`${session.id}\` ended while it was being opened`);
    }
    this.applyRead(session, read.entries);
    return session;
  }

  private async openNow(held: Held): Promise<void> {
    const { session } = held;
    this.open(held, await this.store.openSession(session.id, this.request(held), this.limits, this.now()));
  }

  /** Sends unsent writes in order; one that finds the session gone reopens it (an expired session starts afresh). */
  private async drain(held: Held): Promise<void> {
    if (!held.opened) await this.openNow(held);
    const { session } = held;
    while (held.unsent.length) {
      const batch = held.unsent[0];
      let seq = await this.store.appendSession(session.id, batch, this.limits, this.now());
      if (seq === undefined) {
        this.restart(held);
        await this.openNow(held);
        seq = await this.store.appendSession(session.id, batch, this.limits, this.now());
        if (seq === undefined)
          throw new SessionRefusedError(`session \`${session.id}\` ended while it was written`);
      }
      held.unsent.shift();
      // Nobody else appended in between: apply our own write without reading it back.
      if (seq === session.seq + batch.length) this.applyRead(session, batch);
    }
  }

  /** The store no longer holds the session: forget the copy, keep what is still unsent. */
  private restart(held: Held): void {
    held.session.reset();
    held.opened = false;
    if (held.opener) held.session.agent = held.opener;
  }

  private applyRead(session: Session, entries: string[]): void {
    for (const text of entries) session.apply(JSON.parse(text) as SessionEntry, session.seq + 1);
  }

  /**
   * Returns memory: drops the least recently used copies past `cached`, and copies idle past the
   * TTL (the store has forgotten those sessions too). Oldest first, so it stops at the first
   * copy that stays.
   */
  private evict(): void {
    const idleBefore = this.now() - this.limits.ttlMs;
    for (const [id, held] of this.held) {
      if (this.held.size <= this.cached && held.used > idleBefore) break;
      if (held.unsent.length) continue;
      this.held.delete(id);
    }
  }
}

function parseMeta(meta: string | undefined): { agent?: Agent; task?: string } {
  if (!meta) return {};
  try {
    const parsed = JSON.parse(meta) as { agent?: Agent; task?: string };
    return {
      agent: parsed.agent && typeof parsed.agent === "object" ? parsed.agent : undefined,
      task: typeof parsed.task === "string" ? parsed.task : undefined,
    };
  } catch {
    return {};
  }
}
