import { createHash, randomBytes } from "node:crypto";
import { Redis, type RedisOptions } from "ioredis";
import { DEFAULT_APPROVAL_RETENTION_MS } from "../approval.js";
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
import { MAX_BLOCKED_KEPT, SESSION_OVERFLOW } from "../types.js";
import {
  CONSUME_LUA,
  DECIDE_APPROVAL_LUA,
  EXPIRE_APPROVALS_LUA,
  PUT_APPROVAL_LUA,
  SPEND_LUA,
  USE_APPROVAL_LUA,
} from "./scripts.js";
import {
  APPEND_SESSION_LUA,
  END_SESSION_LUA,
  NOTE_SESSION_LUA,
  OPEN_SESSION_LUA,
  PUT_RECORD_LUA,
  READ_SESSION_LUA,
} from "./session-scripts.js";

/** Options for {@link RedisStateStore}: give a connected `client`, or a `url` (and options) to connect. */
export interface RedisStateStoreOptions {
  /** An ioredis client to use; the store does not close it. */
  client?: Redis;
  /** `redis://[user:pass@]host:port/db`, used when no client is given. */
  url?: string;
  /** ioredis options for the connection the store opens itself. */
  redis?: RedisOptions;
  /** Put before every key, so tenants and test runs do not collide (default `tw:`). */
  prefix?: string;
  /** How long finished approvals are kept after expiry (default 7 days). */
  approvalRetentionMs?: number;
  /** Extra lifetime of a window key past its last call, for clock drift between replicas (default 1000 ms). */
  windowTtlSlackMs?: number;
  /**
   * For the connection the store opens itself: a command unanswered this long is failed by the
   * client, so a frozen server cannot pile up commands (default 1000 ms). The gateway's own
   * deadline (`withStoreDeadlines`) is shorter and decides; this bounds what waits behind it.
   */
  commandTimeoutMs?: number;
}

/** A Lua script run by SHA, loaded on first use (and again after a `SCRIPT FLUSH` or failover). */
class Script {
  readonly sha: string;
  constructor(readonly lua: string) {
    this.sha = createHash("sha1").update(lua).digest("hex");
  }

  async run(client: Redis, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!String((error as Error).message).startsWith("NOSCRIPT")) throw error;
      return await client.eval(this.lua, keys.length, ...keys, ...args);
    }
  }
}

const consumeScript = new Script(CONSUME_LUA);
const spendScript = new Script(SPEND_LUA);
const putApprovalScript = new Script(PUT_APPROVAL_LUA);
const decideApprovalScript = new Script(DECIDE_APPROVAL_LUA);
const useApprovalScript = new Script(USE_APPROVAL_LUA);
const expireApprovalsScript = new Script(EXPIRE_APPROVALS_LUA);
const openSessionScript = new Script(OPEN_SESSION_LUA);
const readSessionScript = new Script(READ_SESSION_LUA);
const appendSessionScript = new Script(APPEND_SESSION_LUA);
const noteSessionScript = new Script(NOTE_SESSION_LUA);
const endSessionScript = new Script(END_SESSION_LUA);
const putRecordScript = new Script(PUT_RECORD_LUA);

/** Fields of an approval that change after it is created; the rest is stored as JSON. */
const MUTABLE = ["status", "decidedAt", "decidedBy", "decisionReason"] as const;

/**
 * State shared by many gateway replicas through one Redis server. Every deciding operation is
 * one Lua script: a call is checked against and counted in all its buckets atomically (a sorted
 * set of call times per sliding window, with a TTL), spend is an integer count of micro-units,
 * and approval transitions happen in the script so a decision or a single use cannot race.
 *
 * Keys (after the prefix): `w:` windows, `t:` totals, `s:` spend, `seen:` session labels,
 * `a:` approvals, `approvals` and `ah:<callHash>` approval indexes. The approval scripts touch
 * keys they compute, so this store targets a single Redis server, not Redis Cluster.
 */
export class RedisStateStore implements StateStore {
  readonly kind = "redis";
  readonly prefix: string;
  private readonly client: Redis;
  private readonly ownsClient: boolean;
  private readonly retentionMs: number;
  private readonly ttlSlackMs: number;
  // Members of a window's sorted set must be unique per call: a random process id and a counter.
  private readonly memberPrefix = randomBytes(6).toString("base64url");
  private calls = 0;

  constructor(options: RedisStateStoreOptions = {}) {
    this.prefix = options.prefix ?? "tw:";
    this.retentionMs = options.approvalRetentionMs ?? DEFAULT_APPROVAL_RETENTION_MS;
    this.ttlSlackMs = options.windowTtlSlackMs ?? 1000;
    if (options.client !== undefined) {
      this.client = options.client;
      this.ownsClient = false;
    } else {
      const redisOptions: RedisOptions = {
        maxRetriesPerRequest: 1,
        commandTimeout: options.commandTimeoutMs ?? 1000,
        ...options.redis,
      };
      this.client =
        options.url === undefined ? new Redis(redisOptions) : new Redis(options.url, redisOptions);
      this.ownsClient = true;
      // Without a listener, every failed reconnect prints an "Unhandled error event" stack.
      this.client.on("error", (error: Error) => {
        this.lastError = error.message;
      });
      // Once connected, a command sent while the server is unreachable fails at once instead of
      // waiting in the offline queue to run (and count) after its caller has given up on it.
      // Commands sent before the first connection still wait for it.
      if (options.redis?.enableOfflineQueue === undefined) {
        this.client.once("ready", () => {
          this.client.options.enableOfflineQueue = false;
        });
      }
    }
  }

  /** The connection's last error (only for a connection the store opened itself). */
  lastError: string | undefined;

  /** Waits until the connection is ready, at most `ms`; false if it is not (the store still works once it is). */
  async connected(ms: number): Promise<boolean> {
    if (this.client.status === "ready") return true;
    return new Promise<boolean>((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.client.off("ready", onReady);
        resolve(ok);
      };
      const onReady = () => done(true);
      const timer = setTimeout(() => done(false), ms);
      this.client.on("ready", onReady);
    });
  }

  /** One round trip; rejects when the server is unreachable. */
  async ping(): Promise<void> {
    await this.client.ping();
  }

  async consume(buckets: LimitBucket[], now: number): Promise<LimitTrip[]> {
    return this.runLimits(buckets, now, false);
  }

  async peek(buckets: LimitBucket[], now: number): Promise<LimitTrip[]> {
    return this.runLimits(buckets, now, true);
  }

  private async runLimits(buckets: LimitBucket[], now: number, dry: boolean): Promise<LimitTrip[]> {
    if (buckets.length === 0) return [];
    const keys: string[] = new Array(buckets.length);
    const args: string[] = new Array(3 + 4 * buckets.length);
    args[0] = dry ? "1" : "0";
    args[1] = String(now);
    args[2] = `${this.memberPrefix}:${this.calls++}`;
    for (let i = 0; i < buckets.length; i++) {
      const { key, limit, windowMs } = buckets[i];
      const base = 3 + 4 * i;
      keys[i] = windowMs > 0 ? `${this.prefix}w:${key}` : `${this.prefix}t:${key}`;
      args[base] = Number.isFinite(limit) ? String(limit) : limit > 0 ? "1e300" : "0";
      args[base + 1] = String(windowMs);
      args[base + 2] = String(now - windowMs);
      args[base + 3] = String(Math.ceil(windowMs) + this.ttlSlackMs);
    }
    const reply = (await consumeScript.run(this.client, keys, args)) as (number | string)[];
    const trips: LimitTrip[] = [];
    for (let i = 0; i < reply.length; i += 3) {
      const bucket = buckets[(reply[i] as number) - 1];
      const oldest = reply[i + 2] as string;
      trips.push({
        key: bucket.key,
        limit: bucket.limit,
        count: reply[i + 1] as number,
        resetAt: bucket.windowMs > 0 && oldest !== "" ? Number(oldest) + bucket.windowMs : null,
      });
    }
    return trips;
  }

  async spend(request: SpendRequest): Promise<SpendResult> {
    const amount = toMicros(request.amount);
    const max = maxToMicros(request.max);
    const key = `${this.prefix}s:${request.key}`;
    if (Number.isNaN(amount)) {
      const current = await this.spentMicros(key);
      return { ok: false, spent: fromMicros(current), remaining: fromMicros(Math.max(0, max - current)) };
    }
    const [ok, total] = (await spendScript.run(this.client, [key], [amount, max])) as [number, number];
    return { ok: ok === 1, spent: fromMicros(total), remaining: fromMicros(Math.max(0, max - total)) };
  }

  async spent(key: string): Promise<number> {
    return fromMicros(await this.spentMicros(`${this.prefix}s:${key}`));
  }

  private async spentMicros(key: string): Promise<number> {
    return Number((await this.client.get(key)) ?? "0");
  }

  async addSeen(session: string, labels: string[]): Promise<string[]> {
    const key = `${this.prefix}seen:${session}`;
    if (labels.length === 0) return this.client.smembers(key);
    const results = await this.client
      .multi()
      .sadd(key, ...labels)
      .smembers(key)
      .exec();
    const [error, members] = results![1];
    if (error) throw error;
    return members as string[];
  }

  async seen(session: string): Promise<string[]> {
    return this.client.smembers(`${this.prefix}seen:${session}`);
  }

  async putApproval(approval: Approval): Promise<void> {
    const { status, decidedAt, decidedBy, decisionReason, ...rest } = approval;
    await putApprovalScript.run(
      this.client,
      [`${this.prefix}a:${approval.id}`, `${this.prefix}approvals`, `${this.prefix}ah:${approval.callHash}`],
      [
        approval.id,
        String(approval.createdAt),
        JSON.stringify(rest),
        status,
        String(approval.expiresAt),
        approval.callHash,
        decidedAt === undefined ? "" : String(decidedAt),
        decidedBy ?? "",
        decisionReason ?? "",
        this.prefix,
      ],
    );
  }

  async getApproval(id: string): Promise<Approval | undefined> {
    return parseApproval(await this.client.hgetall(`${this.prefix}a:${id}`));
  }

  async listApprovals(filter: { status?: ApprovalStatus } = {}): Promise<Approval[]> {
    const ids = await this.client.zrange(`${this.prefix}approvals`, "0", "-1");
    if (ids.length === 0) return [];
    const pipeline = this.client.pipeline();
    for (const id of ids) pipeline.hgetall(`${this.prefix}a:${id}`);
    const out: Approval[] = [];
    for (const [error, fields] of (await pipeline.exec())!) {
      if (error) throw error;
      const approval = parseApproval(fields as Record<string, string>);
      if (approval !== undefined && (filter.status === undefined || approval.status === filter.status)) {
        out.push(approval);
      }
    }
    return out;
  }

  async decideApproval(
    id: string,
    status: "approved" | "denied",
    by: string,
    reason: string | undefined,
    now: number,
  ): Promise<Approval | undefined> {
    const reply = await decideApprovalScript.run(
      this.client,
      [`${this.prefix}a:${id}`],
      [status, by, reason ?? "", reason === undefined ? "0" : "1", String(now)],
    );
    return parseApproval(pairs(reply));
  }

  async useApproval(callHash: string, now: number): Promise<Approval | undefined> {
    const reply = await useApprovalScript.run(
      this.client,
      [`${this.prefix}ah:${callHash}`],
      [String(now), this.prefix],
    );
    return parseApproval(pairs(reply));
  }

  async expireApprovals(now: number): Promise<Approval[]> {
    const reply = (await expireApprovalsScript.run(
      this.client,
      [`${this.prefix}approvals`],
      [String(now), this.prefix, String(now - this.retentionMs)],
    )) as string[][];
    const out: Approval[] = [];
    for (const fields of reply) {
      const approval = parseApproval(pairs(fields));
      if (approval !== undefined) out.push(approval);
    }
    return out;
  }

  async openSession(
    id: string,
    request: SessionOpenRequest,
    limits: SessionLimits,
    now: number,
  ): Promise<SessionOpened> {
    const reply = (await openSessionScript.run(
      this.client,
      [],
      [
        this.prefix,
        id,
        request.owner ?? "",
        request.meta ?? "",
        String(now),
        String(limits.ttlMs),
        String(now + limits.ttlMs),
        String(limits.maxSessions),
        String(limits.maxPerOwner),
      ],
    )) as [number, number | string, string?, string?];
    if (reply[0] !== 1) return { ok: false, reason: String(reply[1]) };
    return { ok: true, created: reply[1] === 1, owner: reply[2] || undefined, meta: reply[3] || undefined };
  }

  async readSession(
    id: string,
    after: number,
    limits: SessionLimits,
    now: number,
  ): Promise<SessionRead | undefined> {
    const reply = (await readSessionScript.run(
      this.client,
      [],
      [this.prefix, id, String(after), String(limits.ttlMs), String(now + limits.ttlMs)],
    )) as [string | null, string | null, string, string[]] | null;
    if (!reply) return undefined;
    return {
      owner: reply[0] || undefined,
      meta: reply[1] || undefined,
      seq: Number(reply[2]),
      entries: reply[3],
    };
  }

  async appendSession(
    id: string,
    entries: string[],
    limits: SessionLimits,
    now: number,
  ): Promise<number | undefined> {
    const reply = (await appendSessionScript.run(
      this.client,
      [],
      [
        this.prefix,
        id,
        String(limits.ttlMs),
        String(now + limits.ttlMs),
        String(limits.maxBytes),
        SESSION_OVERFLOW,
        ...entries,
      ],
    )) as number | null;
    return reply === null ? undefined : Number(reply);
  }

  async noteSession(id: string, note: SessionNote, limits: SessionLimits, now: number): Promise<boolean> {
    const reply = await noteSessionScript.run(
      this.client,
      [],
      [
        this.prefix,
        id,
        String(limits.ttlMs),
        String(now + limits.ttlMs),
        note.verdict,
        `${note.tool}\u0000${note.verdict}`,
        note.blocked ?? "",
        String(MAX_BLOCKED_KEPT),
      ],
    );
    return reply === 1;
  }

  async sessionCounters(id: string, _now: number): Promise<SessionCounters | undefined> {
    const results = await this.client
      .multi()
      .hmget(`${this.prefix}sm:${id}`, "owner", "meta", "seq")
      .hgetall(`${this.prefix}sc:${id}`)
      .lrange(`${this.prefix}sb:${id}`, 0, -1)
      .exec();
    for (const [error] of results!) if (error) throw error;
    const [owner, meta, seq] = results![0][1] as (string | null)[];
    if (seq === null) return undefined;
    const counts: Record<string, number> = {};
    for (const [key, value] of Object.entries(results![1][1] as Record<string, string>))
      counts[key] = Number(value);
    return {
      owner: owner || undefined,
      meta: meta || undefined,
      counts,
      blocked: results![2][1] as string[],
    };
  }

  async endSession(id: string): Promise<void> {
    await endSessionScript.run(this.client, [], [this.prefix, id]);
  }

  async countSessions(now: number, owner?: string): Promise<number> {
    const key = owner === undefined ? `${this.prefix}sessions` : `${this.prefix}so:${owner}`;
    return this.client.zcount(key, `(${now}`, "+inf");
  }

  async getRecord(key: string, _now: number): Promise<StoredRecord | undefined> {
    const [version, value] = await this.client.hmget(`${this.prefix}r:${key}`, "v", "value");
    return version === null || value === null ? undefined : { value, version: Number(version) };
  }

  async putRecord(
    key: string,
    value: string,
    expect: number,
    expiresAt: number | null,
    _now: number,
  ): Promise<boolean> {
    const reply = await putRecordScript.run(
      this.client,
      [`${this.prefix}r:${key}`],
      [String(expect), value, expiresAt === null ? "" : String(expiresAt)],
    );
    return reply === 1;
  }

  async deleteRecord(key: string): Promise<void> {
    await this.client.del(`${this.prefix}r:${key}`);
  }

  async close(): Promise<void> {
    if (this.ownsClient && this.client.status !== "end") await this.client.quit();
  }
}

/** A script's HGETALL reply (a flat list) as a record; undefined for a nil reply. */
function pairs(reply: unknown): Record<string, string> | undefined {
  if (!Array.isArray(reply)) return undefined;
  const out: Record<string, string> = {};
  for (let i = 0; i < reply.length; i += 2) out[reply[i]] = reply[i + 1];
  return out;
}

function parseApproval(fields: Record<string, string> | undefined): Approval | undefined {
  if (fields === undefined || fields.json === undefined) return undefined;
  const approval = JSON.parse(fields.json) as Approval;
  for (const name of MUTABLE) {
    const value = fields[name];
    if (value === undefined) continue;
    if (name === "decidedAt") approval.decidedAt = Number(value);
    else approval[name] = value as never;
  }
  return approval;
}
