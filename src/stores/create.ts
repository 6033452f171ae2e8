import { ToolwardenError } from "../core/index.js";
import { importOptional } from "../core/optional.js";
import type { StateStore } from "./types.js";

export interface CreateStoreOptions {
  /**
   * How long one operation may wait for a lock another process holds. SQLite waits synchronously,
   * holding up every call of this process, so a server sets it to its store deadline (the default).
   */
  lockWaitMs?: number;
}

/**
 * Opens a store from a URL, loading only the backend it names:
 * - `memory:`
 * - `sqlite:/path/to/file.db` (also `sqlite:///abs/path.db`, `sqlite:relative.db`, `sqlite::memory:`)
 * - `redis://[user:pass@]host:port/db?prefix=tw:` (or `rediss://`); `prefix` defaults to `tw:`
 *
 * Throws a `ToolwardenError` with code `store_url` for a URL it does not understand.
 */
export async function createStateStore(url: string, options: CreateStoreOptions = {}): Promise<StateStore> {
  if (url === "memory:" || url === "memory") {
    const { MemoryStateStore } = await import("./memory/index.js");
    return new MemoryStateStore();
  }
  if (url.startsWith("sqlite:")) {
    let path = url.slice("sqlite:".length);
    if (path.startsWith("//")) path = path.slice(2);
    if (path === "") throw new ToolwardenError("store_url", `store url \`${url}\` names no database file`);
    const { SqliteStateStore } = await import("./sqlite/index.js");
    return new SqliteStateStore({ path: decodeURIComponent(path), busyTimeoutMs: options.lockWaitMs });
  }
  if (url.startsWith("redis://") || url.startsWith("rediss://")) {
    const parsed = new URL(url);
    // ioredis reads query parameters as connection options; `prefix` is ours.
    const prefix = parsed.searchParams.get("prefix") ?? undefined;
    parsed.searchParams.delete("prefix");
    const { RedisStateStore } = await importOptional(
      "ioredis",
      "a redis:// store",
      () => import("./redis/index.js"),
    );
    const store = new RedisStateStore({ url: parsed.toString(), prefix });
    // Commands fail fast while disconnected, so give the first connection a moment; a server that
    // is down stays down for this store's deadlines to report (the client keeps reconnecting).
    await store.connected(2000);
    return store;
  }
  throw new ToolwardenError(
    "store_url",
    `unknown store url \`${url}\`\nhelp: use \`memory:\`, \`sqlite:/path/file.db\` or \`redis://host:6379/0\``,
  );
}
