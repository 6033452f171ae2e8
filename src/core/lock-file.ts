import { open, readFile, stat, unlink } from "node:fs/promises";
import { hostname } from "node:os";

/*
 * `<path>.lock` files holding `pid@host`, for the writers that must be alone on a file (the JSONL
 * audit log, the pin ledger). Hand-written: lock libraries poll mtimes, and one exclusive create
 * is all a single writer needs.
 */

/** Creates the lock file; false when it exists already. */
export async function createLock(file: string): Promise<boolean> {
  try {
    const handle = await open(file, "wx", 0o600);
    await handle.writeFile(`${process.pid}@${hostname()}`);
    await handle.close();
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    return false;
  }
}

/**
 * Who holds an existing lock, and whether it may be broken: its process on this host is dead, or
 * (with `staleMs`) the lock is older than that.
 */
export async function lockOwner(file: string, staleMs?: number): Promise<{ owner: string; stale: boolean }> {
  const owner = (await readFile(file, "utf8").catch(() => "")).trim();
  const [pid, host] = owner.split("@");
  if (owner !== "" && host === hostname() && !isAlive(Number(pid))) return { owner, stale: true };
  if (staleMs === undefined) return { owner, stale: false };
  const age = Date.now() - ((await stat(file).catch(() => undefined))?.mtimeMs ?? Date.now());
  return { owner, stale: age > staleMs };
}

export async function removeLock(file: string): Promise<void> {
  await unlink(file).catch(() => {});
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
