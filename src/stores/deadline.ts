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
 * Runs `op` with a deadline: past `ms` it rejects with `StoreUnavailableError` naming `store`
 * and `what`, and whatever `op` answers later is dropped. Also turns any other failure of `op`
 * into `StoreUnavailableError`. The building block for every store call made while deciding.
 */
export function withDeadline<T>(op: () => Promise<T>, ms: number, store: string, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      reject(
        new StoreUnavailableError(store, `state store \`${store}\` did not answer ${what} within ${ms} ms`),
      );
    }, ms);
    let pending: Promise<T>;
    try {
      pending = op();
    } catch (error) {
      pending = Promise.reject(error);
    }
    pending.then(
      (value) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(
          error instanceof StoreUnavailableError
            ? error
            : new StoreUnavailableError(
                store,
                `state store \`${store}\` failed ${what}: ${error instanceof Error ? error.message : String(error)}`,
                { cause: error },
              ),
        );
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
  const guard = <T>(what: string, result: Promise<T>): Promise<T> =>
    withDeadline(() => result, timeoutMs, kind, what).then(
      (value) => {
        if (!up) mark(true, undefined);
        return value;
      },
      (error: Error) => {
        mark(false, error.message);
        throw error;
      },
    );
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
