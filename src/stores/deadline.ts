import { ToolwardenError } from "../core/errors.js";
import type { StateStore } from "./types.js";

/** Default deadline of one store operation (ms): well under a second, far above a healthy round trip. */
export const DEFAULT_STORE_TIMEOUT_MS = 250;

/**
 * A store operation failed or did not answer within its deadline. The gateway denies the call
 * (rule `store-unavailable`), naming the store, and never uses an answer that came later.
 */
export class StoreUnavailableError extends ToolwardenError {
  readonly store: string;
  constructor(store: string, message: string, options?: { cause?: unknown }) {
    super("store_unavailable", message, options);
    this.store = store;
  }
}

/** What `/health` says about the state store. */
export interface StoreHealth {
  ok: boolean;
  kind: string;
  /** The last failure while down. */
  error?: string;
  /** Epoch ms of the last change between up and down. */
  since: number;
}

/**
 * Operations begun with the same timeout, in the order they began, which is also the order of
 * their deadlines: one timer for all of them, armed for the oldest, instead of a timer set and
 * cleared per operation (most store operations settle within the same turn). The timer holds the
 * process open only while an operation is pending.
 */
class DeadlineQueue {
  readonly ms: number;
  #pending: DeadlineEntry[] = [];
  #head = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(ms: number) {
    this.ms = ms;
  }

  /** `expire` runs once `ms` have passed, unless the entry is settled first. */
  add(expire: () => void): DeadlineEntry {
    const entry: DeadlineEntry = { at: performance.now() + this.ms, settled: false, expire };
    this.#pending.push(entry);
    if (!this.#timer) this.#timer = setTimeout(this.#fire, this.ms);
    else this.#timer.ref();
    return entry;
  }

  /** Marks `entry` as answered in time; its deadline will not run. */
  settle(entry: DeadlineEntry): void {
    entry.settled = true;
    if (this.#pending[this.#head] === entry) this.#dropSettled();
  }

  #dropSettled(): void {
    const pending = this.#pending;
    while (this.#head < pending.length && pending[this.#head].settled) this.#head++;
    if (this.#head === pending.length) {
      pending.length = 0;
      this.#head = 0;
      this.#timer?.unref();
    } else if (this.#head > 1024 && this.#head * 2 > pending.length) {
      this.#pending = pending.slice(this.#head);
      this.#head = 0;
    }
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    const now = performance.now();
    const pending = this.#pending;
    while (this.#head < pending.length) {
      const entry = pending[this.#head];
      if (!entry.settled && entry.at > now) break;
      this.#head++;
      if (!entry.settled) {
        entry.settled = true;
        entry.expire();
      }
    }
    this.#dropSettled();
    // An `expire` above may have added an operation, and armed a timer for it: this one replaces it.
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#head < this.#pending.length) {
      this.#timer = setTimeout(this.#fire, Math.max(1, this.#pending[this.#head].at - now));
    }
  };
}

interface DeadlineEntry {
  /** `performance.now()` at which the operation has missed its deadline. */
  at: number;
  settled: boolean;
  expire: () => void;
}

/** One queue per timeout, for every store: with one timeout, deadlines come in the order operations began. */
const queues = new Map<number, DeadlineQueue>();

function queueFor(ms: number): DeadlineQueue {
  let queue = queues.get(ms);
  if (!queue) {
    queue = new DeadlineQueue(ms);
    queues.set(ms, queue);
  }
  return queue;
}

/**
 * Runs `op` with a deadline: past `ms` it rejects with `StoreUnavailableError` naming `store`
 * and `what`, and whatever `op` answers later is dropped. Also turns any other failure of `op`
 * into `StoreUnavailableError`. The building block for every store call made while deciding.
 */
export function withDeadline<T>(op: () => Promise<T>, ms: number, store: string, what: string): Promise<T> {
  let pending: Promise<T>;
  try {
    pending = op();
  } catch (error) {
    pending = Promise.reject(error);
  }
  return deadlined(pending, queueFor(ms), store, what);
}

/** `pending` with the deadline of `queue`; `onAnswer` hears how it ended (an error, or none). */
function deadlined<T>(
  pending: Promise<T>,
  queue: DeadlineQueue,
  store: string,
  what: string,
  onAnswer?: (error: Error | undefined) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const entry = queue.add(() => {
      const error = new StoreUnavailableError(
        store,
        `state store \`${store}\` did not answer ${what} within ${queue.ms} ms`,
      );
      onAnswer?.(error);
      reject(error);
    });
    pending.then(
      (value) => {
        if (entry.settled) return;
        queue.settle(entry);
        onAnswer?.(undefined);
        resolve(value);
      },
      (error: unknown) => {
        if (entry.settled) return;
        queue.settle(entry);
        const failure =
          error instanceof StoreUnavailableError
            ? error
            : new StoreUnavailableError(
                store,
                `state store \`${store}\` failed ${what}: ${error instanceof Error ? error.message : String(error)}`,
                { cause: error },
              );
        onAnswer?.(failure);
        reject(failure);
      },
    );
  });
}

export interface DeadlineStoreOptions {
  /** Deadline of each operation (ms); default {@link DEFAULT_STORE_TIMEOUT_MS}. */
  timeoutMs?: number;
  /** Told when the store goes down or comes back (one line, for the operator's log). */
  onChange?: (health: StoreHealth) => void;
  now?: () => number;
}

/** A state store whose every asynchronous operation has a deadline, and which knows whether it is up. */
export interface GuardedStateStore extends StateStore {
  readonly inner: StateStore;
  readonly timeoutMs: number;
  /** The state of the store as of the last operation (or `check`). */
  health(): StoreHealth;
  /** A round trip within the deadline (the store's `ping` when it has one), then `health()`. */
  check(): Promise<StoreHealth>;
}

/** Whether `store` already has deadlines (from {@link withStoreDeadlines}). */
export function isGuarded(store: StateStore): store is GuardedStateStore {
  return typeof (store as Partial<GuardedStateStore>).health === "function" && "inner" in store;
}

/**
 * `store` with a deadline on every operation that returns a promise (see {@link withDeadline}),
 * including operations added to `StateStore` later. The result knows whether the store is up:
 * down after a failure or a missed deadline, up again after the next answer in time, so recovery
 * needs nothing from the caller. The in-process memory store cannot hang and is returned as is.
 */
export function withStoreDeadlines(store: StateStore, options: DeadlineStoreOptions = {}): StateStore {
  if (isGuarded(store) || store.kind === "memory") return store;
  const timeoutMs = options.timeoutMs ?? DEFAULT_STORE_TIMEOUT_MS;
  if (!(timeoutMs > 0 && Number.isFinite(timeoutMs)))
    throw new TypeError(`store timeout must be a positive number of ms, not ${timeoutMs}`);
  const now = options.now ?? Date.now;
  const kind = store.kind;
  let up = true;
  let since = now();
  let lastError: string | undefined;
  const mark = (ok: boolean, error: string | undefined) => {
    lastError = error;
    if (ok === up) return;
    up = ok;
    since = now();
    options.onChange?.(health());
  };
  const health = (): StoreHealth => ({
    ok: up,
    kind,
    since,
    ...(up || !lastError ? {} : { error: lastError }),
  });
  const queue = queueFor(timeoutMs);
  const answered = (error: Error | undefined) => {
    if (error) mark(false, error.message);
    else if (!up) mark(true, undefined);
  };
  const guard = <T>(what: string, result: Promise<T>): Promise<T> =>
    deadlined(result, queue, kind, what, answered);
  const extra: Omit<GuardedStateStore, keyof StateStore> = {
    inner: store,
    timeoutMs,
    health,
    async check() {
      const ping = (store as { ping?: () => Promise<unknown> }).ping;
      await guard("`ping`", ping ? ping.call(store) : store.spent("health:probe")).catch(() => {});
      return health();
    },
  };
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(target, prop) {
      if (Object.hasOwn(extra, prop)) return extra[prop as keyof typeof extra];
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function" || prop === "close" || prop === "constructor") {
        return typeof value === "function" ? value.bind(target) : value;
      }
      let fn = wrapped.get(prop);
      if (!fn) {
        const what = `\`${String(prop)}\``;
        fn = (...args: unknown[]) => {
          // A synchronous method (or one that throws synchronously) is passed through as it is.
          const result: unknown = value.apply(target, args);
          return isThenable(result) ? guard(what, Promise.resolve(result)) : result;
        };
        wrapped.set(prop, fn);
      }
      return fn;
    },
    has(target, prop) {
      return Object.hasOwn(extra, prop) || Reflect.has(target, prop);
    },
  }) as GuardedStateStore;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null && typeof value === "object" && typeof (value as PromiseLike<unknown>).then === "function"
  );
}
