import { mkdir, open, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { resolveAuditKey, type SigningOptions } from "./chain.js";
import { AuditSinkError } from "./errors.js";
import { type Durability, JsonlAuditSink } from "./jsonl-sink.js";
import type { AuditEvent, AuditRecord, AuditSink } from "./types.js";
import { ChainVerifier } from "./verify.js";

export interface FanoutOptions extends SigningOptions {
  /**
   * The sinks to write to; a bare sink is named `<index>-<kind>`. Names must be unique: they name
   * the spool files. A `copy` (a queryable copy of a log that is the record of truth) is written
   * and spooled like the others, but `append` does not wait for it (unless it is `bound` records
   * behind): `flush`, `flushCopies` and `close` do.
   */
  sinks: Array<AuditSink | { name: string; sink: AuditSink; copy?: boolean }>;
  /** Directory for the spools (`<name>.spool.jsonl` and `<name>.spool.cursor`). */
  spoolDir: string;
  /** Records queued for one sink above which `overBound` is true. Default 10,000. */
  bound?: number;
  /** First wait before retrying a sink that is down, doubled up to `maxRetryMs`. Default 200 ms. */
  retryMs?: number;
  /** Default 10 s. */
  maxRetryMs?: number;
  /** Spooled records sent to a recovered sink at once. Default 500. */
  drainBatch?: number;
  /** Durability of the spool files. Default `fsync`. */
  spoolDurability?: Durability;
}

/** Longest spooled record replayed; a longer line means a damaged spool. */
const MAX_RECORD_BYTES = 64 << 20;

/** How one sink behind the fanout is doing. */
export interface FanoutTargetStatus {
  name: string;
  kind: string;
  /** `direct` while the sink takes records; `spooling` while records queue on disk for it. */
  mode: "direct" | "spooling";
  /** Records waiting in the spool for this sink. */
  queued: number;
  lastError?: string;
}

/**
 * Writes every record to several sinks. A sink that fails never blocks the others and never loses
 * records: what it refuses goes to a disk spool (a hash-chained JSONL file, signed when a key is
 * available) and is replayed to it in order, retried with backoff, once it accepts again; spooled
 * records survive restarts. `append` rejects only when a record could be neither written nor
 * spooled for some sink. Delivery from the spool is at least once: a batch that failed part-way is
 * resent whole. A spool whose chain does not verify is not replayed (someone edited it).
 */
export class FanoutAuditSink implements AuditSink {
  readonly kind = "fanout";
  readonly #targets: Target[];
  readonly #bound: number;
  #closed = false;

  private constructor(targets: Target[], bound: number) {
    // `new FanoutAuditSink(options)` from user code would have no targets and refuse every record.
    if (!Array.isArray(targets))
      throw new TypeError(
        "a FanoutAuditSink is opened, not constructed: use `await FanoutAuditSink.open({ sinks, spoolDir })`",
      );
    this.#targets = targets;
    this.#bound = bound;
  }

  /** Opens the fanout and starts replaying anything a previous run left in the spools. */
  static async open(options: FanoutOptions): Promise<FanoutAuditSink> {
    await mkdir(options.spoolDir, { recursive: true, mode: 0o700 });
    const key = resolveAuditKey(options);
    const names = new Set<string>();
    const targets = options.sinks.map((entry, i) => {
      const { name, sink, copy } =
        "sink" in entry ? entry : { name: `${i}-${entry.kind}`, sink: entry, copy: false };
      if (!/^[A-Za-z0-9_.-]+$/.test(name))
        throw new AuditSinkError(`fanout sink name \`${name}\` must match [A-Za-z0-9_.-]+`);
      if (names.has(name)) throw new AuditSinkError(`fanout sink name \`${name}\` is used twice`);
      names.add(name);
      return new Target(name, sink, options, key, copy === true);
    });
    await Promise.all(targets.map((t) => t.resume()));
    return new FanoutAuditSink(targets, options.bound ?? 10_000);
  }

  async append(event: AuditEvent): Promise<void> {
    if (this.#closed) throw new AuditSinkError("audit sink is closed");
    const awaited: Array<Promise<void>> = [];
    const names: string[] = [];
    for (const target of this.#targets) {
      const accepted = target.accept(event);
      // A copy that falls `bound` records behind is waited for, so what it holds in memory stays bounded.
      if (target.copy && target.inFlight <= this.#bound) {
        accepted.catch((error: Error) => {
          target.lastError = error;
          process.emitWarning(
            `toolwarden: an audit record was neither written nor spooled for the copy \`${target.name}\`: ${error?.message}`,
          );
        });
      } else {
        awaited.push(accepted);
        names.push(target.name);
      }
    }
    const results = await Promise.allSettled(awaited);
    const failed = results.findIndex((r) => r.status === "rejected");
    if (failed >= 0) {
      const reason = (results[failed] as PromiseRejectedResult).reason;
      throw new AuditSinkError(
        `audit record neither written nor spooled for sink \`${names[failed]}\`: ${(reason as Error)?.message}`,
        { cause: reason },
      );
    }
  }

  /** Waits until every record appended so far is written to its sink or to that sink's spool. */
  /** Waits until the copies (`copy: true`) hold every record appended so far, or spooled it. */
  async flushCopies(): Promise<void> {
    await Promise.all(this.#targets.filter((t) => t.copy).map((t) => t.flush()));
  }

  async flush(): Promise<void> {
    await Promise.all(this.#targets.map((t) => t.flush()));
  }

  /** Stops replaying, flushes, and closes the spools and the sinks. Spooled records stay for the next start. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const results = await Promise.allSettled(this.#targets.map((t) => t.close()));
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }

  status(): FanoutTargetStatus[] {
    return this.#targets.map((t) => t.status());
  }

  /** Records waiting in all spools. */
  get queueDepth(): number {
    return this.#targets.reduce((sum, t) => sum + t.queued, 0);
  }

  /** True while some sink's spool holds more than `bound` records: a `fail: closed` gateway should deny. */
  get overBound(): boolean {
    return this.#targets.some((t) => t.queued > this.#bound);
  }

  /** Resolves once every spool is empty and every sink is taking records directly again. */
  drained(): Promise<void> {
    return Promise.all(this.#targets.map((t) => t.drained())).then(() => {});
  }
}

/** One sink with its spool and its replay loop. */
class Target {
  mode: "direct" | "spooling" = "direct";
  queued = 0;
  lastError: unknown;
  readonly #spoolPath: string;
  readonly #cursorPath: string;
  readonly #options: FanoutOptions;
  readonly #key: Buffer | undefined;
  #spool: Promise<JsonlAuditSink> | undefined;
  #spoolGone: Promise<void> = Promise.resolve();
  #loop: Promise<void> | undefined;
  #inFlight = new Set<Promise<unknown>>();
  #closed = false;
  #wake: (() => void) | undefined;
  #drainWaiters: Array<{ resolve: () => void; reject: (error: unknown) => void }> = [];
  // Replay position: byte offset in the spool, last replayed spool seq, and the spool's own chain check.
  #pos = 0;
  #cursor = 0;
  #verifier: ChainVerifier;

  constructor(
    readonly name: string,
    readonly sink: AuditSink,
    options: FanoutOptions,
    key: Buffer | undefined,
    /** A copy: `append` does not wait for it. */
    readonly copy: boolean,
  ) {
    this.#options = options;
    this.#key = key;
    this.#spoolPath = join(options.spoolDir, `${name}.spool.jsonl`);
    this.#cursorPath = join(options.spoolDir, `${name}.spool.cursor`);
    this.#verifier = new ChainVerifier(key);
  }

  /** Picks up a spool left by an earlier run. */
  async resume(): Promise<void> {
    const text = await readFile(this.#cursorPath, "utf8").catch(() => "");
    this.#cursor = Number(/^\d+$/.test(text.trim()) ? text.trim() : 0);
    const exists = await open(this.#spoolPath, "r").then(
      (h) => h.close().then(() => true),
      () => false,
    );
    if (!exists) return;
    const spool = await this.#getSpool();
    this.queued = Math.max(0, spool.head.seq - this.#cursor);
    if (this.queued > 0) this.#startSpooling();
    else await this.#removeSpool();
  }

  accept(event: AuditEvent): Promise<void> {
    if (this.mode === "spooling") return this.#track(this.#toSpool(event));
    return this.#track(
      this.sink.append(event).catch((error) => {
        this.lastError = error;
        this.#startSpooling();
        return this.#toSpool(event);
      }),
    );
  }

  async flush(): Promise<void> {
    await Promise.allSettled([...this.#inFlight]);
    if (this.mode === "direct") await this.sink.flush();
    if (this.#spool) await (await this.#spool).flush();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    await Promise.allSettled([...this.#inFlight]);
    await this.#loop;
    const closed = new AuditSinkError(`closed before the spool for \`${this.name}\` drained`);
    for (const waiter of this.#drainWaiters.splice(0)) waiter.reject(closed);
    try {
      if (this.#spool) await (await this.#spool).close();
    } finally {
      await this.sink.close();
    }
  }

  status(): FanoutTargetStatus {
    const status: FanoutTargetStatus = {
      name: this.name,
      kind: this.sink.kind,
      mode: this.mode,
      queued: this.queued,
    };
    if (this.lastError !== undefined)
      status.lastError = (this.lastError as Error)?.message ?? String(this.lastError);
    return status;
  }

  drained(): Promise<void> {
    if (this.mode === "direct") return Promise.resolve();
    return new Promise((resolve, reject) => this.#drainWaiters.push({ resolve, reject }));
  }

  /** Appends not yet settled. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  #track<T>(promise: Promise<T>): Promise<T> {
    this.#inFlight.add(promise);
    const done = () => this.#inFlight.delete(promise);
    promise.then(done, done);
    return promise;
  }

  async #toSpool(event: AuditEvent): Promise<void> {
    this.queued++;
    try {
      const spool = await this.#getSpool();
      await spool.append(event);
    } catch (error) {
      this.queued--;
      throw error;
    }
    this.#wake?.();
  }

  #getSpool(): Promise<JsonlAuditSink> {
    if (!this.#spool) {
      const opening = this.#spoolGone.then(() =>
        JsonlAuditSink.open({
          path: this.#spoolPath,
          durability: this.#options.spoolDurability ?? "fsync",
          ...(this.#key ? { key: this.#key } : { unsigned: true, env: {} }),
        }),
      );
      this.#spool = opening;
      // A spool that failed to open is retried by the next record.
      opening.catch(() => {
        if (this.#spool === opening) this.#spool = undefined;
      });
    }
    return this.#spool;
  }

  #startSpooling(): void {
    this.mode = "spooling";
    this.#loop ??= this.#replay().finally(() => {
      this.#loop = undefined;
    });
  }

  /** Replays the spool to the sink in order until it is empty, then goes back to direct writes. */
  async #replay(): Promise<void> {
    const first = this.#options.retryMs ?? 200;
    const max = this.#options.maxRetryMs ?? 10_000;
    let delay = first;
    while (!this.#closed) {
      let chunk: AuditRecord[];
      try {
        chunk = await this.#readChunk(this.#options.drainBatch ?? 500);
      } catch (error) {
        this.lastError = error;
        await this.#sleep(max);
        continue;
      }
      if (chunk.length === 0) {
        if (this.queued === 0) {
          await this.#finishSpooling();
          // A failure while the spool was being removed starts spooling again.
          if (this.mode === "direct") return;
          continue;
        }
        // Records are on their way into the spool: wait for them.
        await this.#sleep(5);
        continue;
      }
      const results = await Promise.allSettled(chunk.map((record) => this.sink.append(eventOf(record))));
      let done = results.findIndex((r) => r.status === "rejected");
      if (done < 0) done = results.length;
      if (done > 0) await this.#advance(chunk[done - 1]!.seq, done);
      if (done < results.length) {
        this.lastError = (results[done] as PromiseRejectedResult).reason;
        // Resend from the first failure: rewind the reader to it.
        this.#rewind();
        await this.#sleep(delay);
        delay = Math.min(delay * 2, max);
      } else {
        delay = first;
      }
    }
  }

  async #advance(seq: number, count: number): Promise<void> {
    this.#cursor = seq;
    this.queued -= count;
    const tmp = `${this.#cursorPath}.tmp`;
    await writeFile(tmp, String(seq), { mode: 0o600 });
    await rename(tmp, this.#cursorPath);
  }

  /**
   * Reads up to `max` spooled records after the cursor, checking the spool's own chain as it goes.
   * Only records a verified checkpoint signs are handed out: the rest of a batch still being
   * written is read again next time.
   */
  async #readChunk(max: number): Promise<AuditRecord[]> {
    const spool = this.#spool ? await this.#spool : undefined;
    if (!spool) return [];
    const handle = await open(this.#spoolPath, "r");
    const out: AuditRecord[] = [];
    const unsigned: AuditRecord[] = [];
    let pos = this.#pos;
    try {
      let buf = Buffer.alloc(1 << 20);
      read: while (out.length < max) {
        const { bytesRead } = await handle.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) break;
        const end = buf.subarray(0, bytesRead).lastIndexOf(10);
        if (end < 0) {
          // One record longer than the buffer: grow it; a line still being written: wait.
          if (bytesRead < buf.length) break;
          if (buf.length >= MAX_RECORD_BYTES) {
            throw new AuditSinkError(
              `spool \`${this.#spoolPath}\` holds a line over ${MAX_RECORD_BYTES} bytes`,
            );
          }
          buf = Buffer.alloc(buf.length * 2);
          continue;
        }
        let start = 0;
        while (start <= end) {
          const nl = buf.indexOf(10, start);
          const line = buf.toString("utf8", start, nl);
          const record = JSON.parse(line) as AuditRecord;
          const problem = this.#verifier.check(record);
          if (problem)
            throw new AuditSinkError(`spool \`${this.#spoolPath}\` does not verify: ${problem.message}`);
          pos += nl + 1 - start;
          start = nl + 1;
          if (record.seq > this.#cursor) unsigned.push(record);
          if (this.#verifier.covered.seq === record.seq) {
            out.push(...unsigned.splice(0));
            this.#pos = pos;
            if (out.length >= max) break read;
          }
        }
      }
    } finally {
      await handle.close();
      // Records past the last checkpoint are read again once it is there.
      this.#verifier.rollback();
    }
    return out;
  }

  #rewind(): void {
    this.#pos = 0;
    this.#verifier = new ChainVerifier(this.#key);
  }

  async #finishSpooling(): Promise<void> {
    this.mode = "direct";
    this.#spoolGone = this.#removeSpool();
    await this.#spoolGone;
    if (this.mode === "direct") for (const waiter of this.#drainWaiters.splice(0)) waiter.resolve();
  }

  async #removeSpool(): Promise<void> {
    const spool = this.#spool;
    this.#spool = undefined;
    if (spool) await (await spool).close();
    await unlink(this.#spoolPath).catch(() => {});
    await unlink(this.#cursorPath).catch(() => {});
    this.#pos = 0;
    this.#cursor = 0;
    this.#verifier = new ChainVerifier(this.#key);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = () => {
        this.#wake = undefined;
        done();
      };
    });
  }
}

function eventOf(record: AuditRecord): AuditEvent {
  const { seq: _s, prev: _p, hash: _h, hmac: _m, chain: _c, ...event } = record;
  return event;
}
