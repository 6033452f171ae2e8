import { AuditSinkError } from "./errors.js";

export interface GroupCommitOptions {
  /** Most items written in one batch. Default 1000. */
  batchSize?: number;
  /**
   * How long the first item of a batch waits for company, in ms. Default 0: the batch closes at the
   * end of the current turn of the event loop; while one batch is being written the next one fills up
   * anyway, so concurrent callers share a commit without adding latency to a lone caller.
   */
  batchDelayMs?: number;
  /** Resolve `push` as soon as the item is queued; failures then surface from `flush` and `close`. */
  ackOnEnqueue?: boolean;
}

/** Items committed together, and the one promise every `push` of them returns. */
interface Batch<T> {
  items: T[];
  promise: Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Batches items for one writer: `commit` is called with one batch at a time, never concurrently,
 * and each `push` resolves when the batch holding its item has been committed (or rejects with the
 * batch's error). The pushes of one batch share one promise: no Promise per item. After
 * `fail(error)`, everything queued and pushed later is rejected.
 */
export class GroupCommit<T> {
  readonly #commit: (items: T[]) => Promise<void> | void;
  readonly #batchSize: number;
  readonly #delay: number;
  readonly #ackOnEnqueue: boolean;
  /** Batches waiting to be committed, oldest first; the last one takes new items until it is full. */
  #batches: Batch<T>[] = [];
  #queued = 0;
  #running = false;
  #scheduled = false;
  #idle: Array<() => void> = [];
  #broken: unknown;
  #closed = false;
  #unreported: unknown;

  constructor(commit: (items: T[]) => Promise<void> | void, options: GroupCommitOptions = {}) {
    this.#commit = commit;
    this.#batchSize = Math.max(1, options.batchSize ?? 1000);
    this.#delay = Math.max(0, options.batchDelayMs ?? 0);
    this.#ackOnEnqueue = options.ackOnEnqueue ?? false;
  }

  /** Items queued or being written. */
  get pending(): number {
    return this.#queued + (this.#running ? 1 : 0);
  }

  push(item: T): Promise<void> {
    if (this.#broken !== undefined) return Promise.reject(this.#broken);
    if (this.#closed) return Promise.reject(new AuditSinkError("audit sink is closed"));
    let batch = this.#batches[this.#batches.length - 1];
    if (!batch || batch.items.length >= this.#batchSize) {
      batch = newBatch();
      this.#batches.push(batch);
    }
    batch.items.push(item);
    this.#queued++;
    this.#schedule();
    return this.#ackOnEnqueue ? RESOLVED : batch.promise;
  }

  /** Resolves when everything pushed so far is committed; rejects with an error not yet reported. */
  async flush(): Promise<void> {
    if (this.#running || this.#scheduled || this.#queued > 0) {
      await new Promise<void>((resolve) => this.#idle.push(resolve));
    }
    const error = this.#unreported ?? this.#broken;
    this.#unreported = undefined;
    if (error !== undefined) throw error;
  }

  /** Flushes and refuses further items. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
  }

  /** Marks the writer broken: queued and future items are rejected with `error`. */
  fail(error: unknown): void {
    this.#broken ??= error;
  }

  #schedule(): void {
    if (this.#running || this.#scheduled) return;
    this.#scheduled = true;
    if (this.#queued >= this.#batchSize) queueMicrotask(() => void this.#run());
    else if (this.#delay === 0) setImmediate(() => void this.#run());
    else setTimeout(() => void this.#run(), this.#delay);
  }

  async #run(): Promise<void> {
    this.#scheduled = false;
    this.#running = true;
    for (let batch = this.#batches.shift(); batch; batch = this.#batches.shift()) {
      this.#queued -= batch.items.length;
      if (this.#broken !== undefined) {
        this.#settle(batch, this.#broken);
        continue;
      }
      try {
        await this.#commit(batch.items);
        batch.resolve();
      } catch (error) {
        this.#settle(batch, error);
      }
    }
    this.#running = false;
    for (const resolve of this.#idle.splice(0)) resolve();
  }

  #settle(batch: Batch<T>, error: unknown): void {
    if (this.#ackOnEnqueue) {
      // Nobody holds this batch's promise: the error surfaces from `flush`.
      this.#unreported ??= error;
      batch.resolve();
    } else batch.reject(error);
  }
}

const RESOLVED = Promise.resolve();

function newBatch<T>(): Batch<T> {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { items: [], promise, resolve, reject };
}

/** What a group-committed sink takes: batch size and delay, and when `append` resolves. */
export interface BatchedSinkOptions extends Omit<GroupCommitOptions, "ackOnEnqueue"> {
  durability?: "fsync" | "write" | "none";
}

/**
 * What the sinks share: appends are group-committed to `writeBatch`, one batch at a time (acknowledged
 * on enqueue for `durability: "none"`), and `close` flushes before `release` frees the storage.
 */
export abstract class GroupCommitSink<E> {
  readonly #commit: GroupCommit<E>;
  #closed = false;

  constructor(options: BatchedSinkOptions) {
    this.#commit = new GroupCommit((events) => this.writeBatch(events), {
      batchSize: options.batchSize,
      batchDelayMs: options.batchDelayMs,
      ackOnEnqueue: options.durability === "none",
    });
  }

  /** Records queued or being written. */
  get pending(): number {
    return this.#commit.pending;
  }

  append(event: E): Promise<void> {
    return this.#commit.push(event);
  }

  flush(): Promise<void> {
    return this.#commit.flush();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#commit.close();
    } finally {
      await this.release();
    }
  }

  /** Writes one batch durably, as the sink promises; throwing rejects the batch's appends. */
  protected abstract writeBatch(events: E[]): Promise<void> | void;

  /** Frees what the sink holds, after the last batch. */
  protected abstract release(): Promise<void> | void;

  /** Refuses every later batch: the storage is in a state no further write can be trusted on. */
  protected fail(error: unknown): void {
    this.#commit.fail(error);
  }
}
