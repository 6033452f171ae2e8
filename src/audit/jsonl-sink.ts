import { writeSync } from "node:fs";
import { type FileHandle, mkdir, open, rename, stat, truncate, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { createLock, lockOwner, removeLock } from "../core/lock-file.js";
import {
  type ChainHead,
  digestEquals,
  GENESIS,
  hmacHex,
  hmacRole,
  recordHash,
  type SealedRecord,
  type SigningOptions,
  sealBatch,
  signingKey,
} from "./chain.js";
import { AuditSinkError } from "./errors.js";
import { readTailLines, rotatedNumbers, rotatedPath } from "./files.js";
import { type GroupCommitOptions, GroupCommitSink } from "./group-commit.js";
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
 * Append-only JSON Lines audit log: one record per line, hash-chained, written in batches by one
 * writer (group commit), each batch ending with its signed checkpoint. Open it with
 * `JsonlAuditSink.open`; the chain continues across restarts and rotated files. A `<path>.lock`
 * file keeps a second process from writing the same log and forking its chain.
 */
export class JsonlAuditSink extends GroupCommitSink<AuditEvent> implements AuditSink {
  readonly kind = "jsonl";
  readonly path: string;
  readonly #key: Buffer | undefined;
  readonly #durability: Durability;
  readonly #maxBytes: number;
  #handle: FileHandle;
  #size: number;
  #head: ChainHead;
  #nextRotation: number;
  /** Where each batch is encoded, reused: a new buffer of a batch's size is new pages to fault in every time. */
  #scratch = Buffer.alloc(0);

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
    super(options);
    this.path = options.path;
    this.#key = key;
    this.#durability = options.durability ?? "fsync";
    this.#maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
    this.#handle = handle;
    this.#size = size;
    this.#head = head;
    this.#nextRotation = nextRotation;
  }

  /**
   * Opens (or creates) the log: takes the lock, cuts what a crash left unacknowledged at the end (a
   * torn last line, a batch whose checkpoint was never written), and continues `seq` and `prev` from
   * the last record, checking its hash and hmac. Throws `AuditKeyError` without a key (unless
   * `unsigned`), `AuditSinkError` when the log is locked by a live process or its last record does
   * not verify.
   */
  static async open(options: JsonlSinkOptions): Promise<JsonlAuditSink> {
    const key = signingKey(options);
    await mkdir(dirname(options.path), { recursive: true });
    await takeLock(options.path);
    try {
      await repairTornTail(options.path);
      await cutUnsignedBatch(options.path);
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

  protected async release(): Promise<void> {
    await this.#handle.close().catch(() => {});
    await unlink(lockPath(this.path)).catch(() => {});
  }

  protected async writeBatch(events: AuditEvent[]): Promise<void> {
    // The batch and its checkpoint (the last record, signed) go out in one write and one fdatasync.
    const sealed = sealBatch(events, this.#head, this.#key);
    const last = sealed[sealed.length - 1]!.record;
    const head = { seq: last.seq, hash: last.hash };
    const bytes = encodeLines(sealed, (size) => this.#buffer(size));
    if (this.#size > 0 && this.#size + bytes.length > this.#maxBytes) {
      await this.#step("rotate", () => this.#rotate(), true);
    }
    const before = this.#size;
    await this.#step(
      "write",
      () => writeAll(this.#handle, bytes),
      false,
      async () => {
        // Cut what part of the batch reached the file so the chain stays whole; if that fails too, stop.
        await this.#handle.truncate(before).catch((error) => {
          this.fail(
            new AuditSinkError(`audit log \`${this.path}\` is in an unknown state`, { cause: error }),
          );
        });
      },
    );
    this.#size += bytes.length;
    // After a failed fsync the kernel may have dropped the pages: nothing written since is trustworthy.
    if (this.#durability === "fsync") await this.#step("sync", () => this.#handle.datasync(), true);
    this.#head = head;
  }

  /** A buffer of at least `size` bytes to encode a batch in: the kept one, grown if need be (up to MAX_SCRATCH). */
  #buffer(size: number): Buffer {
    if (size <= this.#scratch.length) return this.#scratch;
    const buffer = Buffer.allocUnsafeSlow(size);
    if (size <= MAX_SCRATCH) this.#scratch = buffer;
    return buffer;
  }

  /** Runs one I/O step of a batch; a failure becomes an `AuditSinkError` naming the step (and, when `fatal`, refuses later batches). */
  async #step(
    what: "rotate" | "write" | "sync",
    work: () => Promise<void>,
    fatal: boolean,
    undo?: () => Promise<void>,
  ): Promise<void> {
    try {
      await work();
    } catch (error) {
      await undo?.();
      const failure = new AuditSinkError(
        `cannot ${what} audit log \`${this.path}\`: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
      if (fatal) this.fail(failure);
      throw failure;
    }
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

/** Most UTF-16 code units joined into one string by `encodeLines`: 64 KB even as two-byte text. */
const PIECE_CHARS = 32_768;

/** Largest encoding buffer a sink keeps between batches (a batch of 1,000 typical records needs ~1.6 MB). */
const MAX_SCRATCH = 8 * 1024 * 1024;

/**
 * The records' lines as UTF-8, each ending in a newline. They are joined a piece at a time, never
 * all at once: a string past 128 KB is a large object to V8, and allocating one per batch (256
 * records of ~500 bytes) set off a scavenge each time, which cost ~4 µs per record against ~0.3 µs.
 * One join per piece, not string concatenation: encoding a deep rope of lines costs three times as much.
 */
function encodeLines(sealed: readonly SealedRecord[], buffer: (size: number) => Buffer): Buffer {
  let chars = 0;
  for (const { line } of sealed) chars += line.length + 1;
  // At most 3 bytes per UTF-16 code unit (a surrogate pair, two units, takes 4).
  const bytes = buffer(chars * 3);
  let offset = 0;
  let piece: string[] = [];
  let pieceChars = 0;
  for (let i = 0; i < sealed.length; i++) {
    const { line } = sealed[i]!;
    piece.push(line);
    pieceChars += line.length + 1;
    if (pieceChars >= PIECE_CHARS || i === sealed.length - 1) {
      piece.push("");
      offset += bytes.write(piece.join("\n"), offset, "utf8");
      piece = [];
      pieceChars = 0;
    }
  }
  return bytes.subarray(0, offset);
}

/**
 * Appends the batch with write(2) on this thread: a write into the page cache takes a few
 * microseconds, while `FileHandle.write` hands it to the thread pool and back (~40 us, on the
 * path of every decision through `serve`). The fdatasync, which waits for the disk, stays async.
 */
async function writeAll(handle: FileHandle, bytes: Buffer): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += writeSync(handle.fd, bytes, offset, bytes.length - offset);
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

/**
 * Cuts the records of a batch whose checkpoint never reached the file: a crash tore the batch's
 * write after some of its lines (it was never acknowledged). They are the last lines, all saying
 * `@M` for a checkpoint M past the end. Whatever else ends the file is left for `checkedHead`.
 */
async function cutUnsignedBatch(path: string): Promise<void> {
  for (let n = 64; ; n *= 4) {
    let tail: Awaited<ReturnType<typeof readTailLines>>;
    try {
      tail = await readTailLines(path, n);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      throw error;
    }
    const { lines, size } = tail;
    let cut = 0;
    let checkpoint: number | undefined;
    let i = lines.length - 1;
    for (; i >= 0; i--) {
      const ref = checkpointOf(lines[i]!);
      if (ref === undefined || (checkpoint !== undefined && ref !== checkpoint)) break;
      checkpoint = ref;
      cut += Buffer.byteLength(lines[i]!, "utf8") + 1;
    }
    if (i < 0 && lines.length === n) continue;
    if (cut > 0) await truncate(path, size - cut);
    return;
  }
}

/** The checkpoint a line's record waits for (`hmac: "@M"` with M after its own seq), if it is one. */
function checkpointOf(line: string): number | undefined {
  try {
    const { seq, hmac } = JSON.parse(line) as { seq?: unknown; hmac?: unknown };
    if (typeof seq !== "number" || typeof hmac !== "string") return undefined;
    const role = hmacRole(hmac);
    return role.role === "covered" && role.by > seq ? role.by : undefined;
  } catch {
    return undefined;
  }
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
