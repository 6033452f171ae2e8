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

interface Entry<T> {
  item: T;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Batches items for one writer: `commit` is called with one batch at a time, never concurrently,
 * and each `push` resolves when the batch holding its item has been committed (or rejects with the
 * batch's error). After `fail(error)`, everything queued and pushed later is rejected.
 */
export class GroupCommit<T> {
  readonly #commit: (items: T[]) => Promise<void>;
  readonly #batchSize: number;
  readonly #delay: number;
  readonly #ackOnEnqueue: boolean;
  #queue: Entry<T>[] = [];
  #running = false;
  #scheduled = false;
  #idle: Array<() => void> = [];
  #broken: unknown;
  #closed = false;
  #unreported: unknown;

  constructor(commit: (items: T[]) => Promise<void>, options: GroupCommitOptions = {}) {
    this.#commit = commit;
    this.#batchSize = Math.max(1, options.batchSize ?? 1000);
    this.#delay = Math.max(0, options.batchDelayMs ?? 0);
    this.#ackOnEnqueue = options.ackOnEnqueue ?? false;
  }

  /** Items queued or being written. */
  get pending(): number {
    return this.#queue.length + (this.#running ? 1 : 0);
  }

  push(item: T): Promise<void> {
    if (this.#broken !== undefined) return Promise.reject(this.#broken);
    if (this.#closed) return Promise.reject(new AuditSinkError("audit sink is closed"));
    if (this.#ackOnEnqueue) {
      this.#queue.push({
        item,
        resolve: noop,
        reject: (error) => {
          this.#unreported ??= error;
        },
      });
      this.#schedule();
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      this.#schedule();
    });
  }

  /** Resolves when everything pushed so far is committed; rejects with an error not yet reported. */
  async flush(): Promise<void> {
    if (this.#running || this.#scheduled || this.#queue.length > 0) {
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
    if (this.#queue.length >= this.#batchSize) queueMicrotask(() => void this.#run());
    else if (this.#delay === 0) setImmediate(() => void this.#run());
    else setTimeout(() => void this.#run(), this.#delay);
  }

  async #run(): Promise<void> {
    this.#scheduled = false;
    this.#running = true;
    while (this.#queue.length > 0) {
      if (this.#broken !== undefined) {
        for (const entry of this.#queue.splice(0)) entry.reject(this.#broken);
        break;
      }
      const batch = this.#queue.splice(0, this.#batchSize);
      try {
        await this.#commit(batch.map((entry) => entry.item));
        for (const entry of batch) entry.resolve();
      } catch (error) {
        for (const entry of batch) entry.reject(error);
      }
    }
    this.#running = false;
    for (const resolve of this.#idle.splice(0)) resolve();
  }
}

function noop(): void {}
