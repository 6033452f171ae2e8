import { type FileHandle, mkdir, open, rename, stat, truncate, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import {
  type ChainHead,
  digestEquals,
  GENESIS,
  hmacHex,
  recordHash,
  type SigningOptions,
  sealRecord,
  signingKey,
} from "./chain.js";
import { createLock, lockOwner, removeLock } from "../core/lock-file.js";
import { AuditSinkError } from "./errors.js";
import { readTailLines, rotatedNumbers, rotatedPath } from "./files.js";
import { GroupCommit, type GroupCommitOptions } from "./group-commit.js";
import type { AuditEvent, AuditSink } from "./types.js";

/**
 * When `append` resolves: after the batch is written and fdatasync'ed (`fsync`, survives power
 * loss), after it is written to the OS (`write`, survives a crash of the process), or as soon as it
 * is queued (`none`; failures then surface from `flush`/`close`).
 */
export type Durability = "fsync" | "write" | "none";

export interface JsonlSinkOptions extends SigningOptions, Omit<GroupCommitOptions, "ackOnEnqueue"> {
  /** The active log file, e.g. `.toolwarden/audit.jsonl`. Rotated files sit beside it. */
  path: string;
  /** Default `fsync`. */
  durability?: Durability;
  /** Rotate when the active file would grow past this many bytes: `audit.jsonl` -> `audit.<n>.jsonl`. */
  maxBytes?: number;
}

/**
 * Append-only JSON Lines audit log: one record per line, hash-chained and HMAC-signed, written in
 * batches by one writer (group commit). Open it with `JsonlAuditSink.open`; the chain continues
 * across restarts and rotated files. A `<path>.lock` file keeps a second process from writing
 * the same log and forking its chain.
 */
export class JsonlAuditSink implements AuditSink {
  readonly kind = "jsonl";
  readonly path: string;
  readonly #key: Buffer | undefined;
  readonly #durability: Durability;
  readonly #maxBytes: number;
  readonly #commit: GroupCommit<AuditEvent>;
  #handle: FileHandle;
  #size: number;
  #head: ChainHead;
  #nextRotation: number;
  #closed = false;

  private constructor(
    options: JsonlSinkOptions,
    key: Buffer | undefined,
    handle: FileHandle,
    size: number,
    head: ChainHead,
    nextRotation: number,
  ) {
    // `new JsonlAuditSink(...)` from user code would make a sink with no open file that refuses
    // every record (and every call with it, under `fail: closed`): say how to make one instead.
    if (!handle || typeof (handle as Partial<FileHandle>).write !== "function")
      throw new TypeError(
        "a JsonlAuditSink is opened, not constructed: use `await JsonlAuditSink.open({ path })`",
      );
    this.path = options.path;
    this.#key = key;
    this.#durability = options.durability ?? "fsync";
    this.#maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
    this.#handle = handle;
    this.#size = size;
    this.#head = head;
    this.#nextRotation = nextRotation;
    this.#commit = new GroupCommit((events) => this.#write(events), {
      batchSize: options.batchSize,
      batchDelayMs: options.batchDelayMs,
      ackOnEnqueue: this.#durability === "none",
    });
  }

  /**
   * Opens (or creates) the log: takes the lock, cuts a torn last line left by a crash (it was never
   * acknowledged), and continues `seq` and `prev` from the last record, checking its hash and hmac.
   * Throws `AuditKeyError` without a key (unless `unsigned`), `AuditSinkError` when the log is
   * locked by a live process or its last record does not verify.
   */
  static async open(options: JsonlSinkOptions): Promise<JsonlAuditSink> {
    const key = signingKey(options);
    await mkdir(dirname(options.path), { recursive: true });
    await takeLock(options.path);
    try {
      await repairTornTail(options.path);
      const numbers = await rotatedNumbers(options.path);
      const head = await findHead(options.path, numbers, key);
      const handle = await open(options.path, "a", 0o600);
      const { size } = await handle.stat();
      return new JsonlAuditSink(options, key, handle, size, head, (numbers.at(-1) ?? 0) + 1);
    } catch (error) {
      await unlink(lockPath(options.path)).catch(() => {});
      throw error;
    }
  }

  /** The last record written: its `seq` and `hash`. */
  get head(): ChainHead {
    return { ...this.#head };
  }

  /** Records queued or being written. */
  get pending(): number {
    return this.#commit.pending;
  }

  append(event: AuditEvent): Promise<void> {
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
      await this.#handle.close().catch(() => {});
      await unlink(lockPath(this.path)).catch(() => {});
    }
  }

  async #write(events: AuditEvent[]): Promise<void> {
    let head = this.#head;
    const lines: string[] = [];
    for (const event of events) {
      const sealed = sealRecord(event, head, this.#key);
      lines.push(sealed.line, "\n");
      head = { seq: sealed.record.seq, hash: sealed.record.hash };
    }
    const bytes = Buffer.from(lines.join(""), "utf8");
    if (this.#size > 0 && this.#size + bytes.length > this.#maxBytes) {
      try {
        await this.#rotate();
      } catch (error) {
        const failure = new AuditSinkError(
          `cannot rotate audit log \`${this.path}\`: ${(error as Error).message}`,
          {
            cause: error,
          },
        );
        this.#commit.fail(failure);
        throw failure;
      }
    }
    const before = this.#size;
    try {
      await writeAll(this.#handle, bytes);
    } catch (error) {
      // Cut what part of the batch reached the file so the chain stays whole; if that fails too, stop.
      try {
        await this.#handle.truncate(before);
      } catch {
        this.#commit.fail(
          new AuditSinkError(`audit log \`${this.path}\` is in an unknown state`, { cause: error }),
        );
      }
      throw new AuditSinkError(`cannot write audit log \`${this.path}\`: ${(error as Error).message}`, {
        cause: error,
      });
    }
    this.#size += bytes.length;
    if (this.#durability === "fsync") {
      try {
        await this.#handle.datasync();
      } catch (error) {
        // After a failed fsync the kernel may have dropped the pages: nothing written since is trustworthy.
        const failure = new AuditSinkError(
          `cannot sync audit log \`${this.path}\`: ${(error as Error).message}`,
          {
            cause: error,
          },
        );
        this.#commit.fail(failure);
        throw failure;
      }
    }
    this.#head = head;
  }

  async #rotate(): Promise<void> {
    if (this.#durability !== "none") await this.#handle.datasync();
    await this.#handle.close();
    await rename(this.path, rotatedPath(this.path, this.#nextRotation++));
    this.#handle = await open(this.path, "a", 0o600);
    this.#size = 0;
    if (this.#durability === "fsync") await syncDir(dirname(this.path));
  }
}

async function writeAll(handle: FileHandle, bytes: Buffer): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset);
    offset += bytesWritten;
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function lockPath(path: string): string {
  return `${path}.lock`;
}

/**
 * Takes `<path>.lock`. A lock left by a dead process on this host is taken over (a crash must not
 * stop the next start); one held by a live process, or by another host, is not.
 */
async function takeLock(path: string): Promise<void> {
  const file = lockPath(path);
  for (let attempt = 0; attempt < 2; attempt++) {
    if (await createLock(file)) return;
    const { owner, stale } = await lockOwner(file);
    if (stale) {
      await removeLock(file);
      continue;
    }
    throw new AuditSinkError(
      `audit log \`${path}\` is locked by \`${owner || "unknown"}\` (file \`${file}\`)`,
    );
  }
  throw new AuditSinkError(`cannot lock audit log \`${path}\``);
}

/** Cuts an unterminated last line: a crash tore it mid-write, and it was never acknowledged. */
async function repairTornTail(path: string): Promise<void> {
  let partial: string;
  let size: number;
  try {
    ({ partial, size } = await readTailLines(path, 0));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  if (partial.length === 0) return;
  await truncate(path, size - Buffer.byteLength(partial, "utf8"));
}

/** The last record of the log: from the active file, or from the newest rotated file when it is empty. */
async function findHead(path: string, rotated: number[], key: Buffer | undefined): Promise<ChainHead> {
  const files = [path, ...rotated.map((n) => rotatedPath(path, n)).reverse()];
  for (const file of files) {
    const exists = await stat(file).then(
      () => true,
      () => false,
    );
    if (!exists) continue;
    const { lines } = await readTailLines(file, 1);
    const last = lines[0];
    if (last === undefined) continue;
    return checkedHead(last, file, key);
  }
  return GENESIS;
}

function checkedHead(line: string, file: string, key: Buffer | undefined): ChainHead {
  const fail = (why: string) =>
    new AuditSinkError(
      `the last record of \`${file}\` ${why}; refusing to extend it (run \`toolwarden audit verify\`)`,
    );
  let record: { seq?: unknown; hash?: unknown; hmac?: unknown; prev?: unknown };
  try {
    record = JSON.parse(line);
  } catch {
    throw fail("is not valid json");
  }
  if (typeof record.seq !== "number" || typeof record.hash !== "string" || typeof record.hmac !== "string") {
    throw fail("is not an audit record");
  }
  if (!digestEquals(recordHash(record), record.hash)) throw fail("does not match its hash");
  if (key && !digestEquals(hmacHex(key, record.hash), record.hmac)) {
    throw fail("has a bad hmac (was the log written with another key?)");
  }
  return { seq: record.seq, hash: record.hash };
}
