import { chmodSync, closeSync, openSync } from "node:fs";

/**
 * Creates `path` (empty) readable and writable by its owner only, or narrows an existing file to
 * that, before a library that cannot be told a mode (SQLite) opens it: SQLite gives its WAL and
 * shared-memory files the mode of the database file. `:memory:` and `""` are left alone.
 */
export function ensurePrivateFile(path: string): void {
  if (path === ":memory:" || path === "" || path.startsWith("file:")) return;
  closeSync(openSync(path, "a", 0o600));
  chmodSync(path, 0o600);
}
