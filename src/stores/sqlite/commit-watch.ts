import { closeSync, openSync, readSync } from "node:fs";
import { endianness } from "node:os";
import type Database from "better-sqlite3";

/** The WAL-index header: two copies of 48 bytes at the start of `<database>-shm`. */
const HEADER_BYTES = 48;
/** Offset of `isInit` in a header copy: 1 once the header describes the WAL. */
const IS_INIT = 12;
/** `iVersion`, the header's first field (native byte order): the format this reads. Any other: always look. */
const WAL_INDEX_VERSION = 3007000;
const LITTLE_ENDIAN = endianness() === "LE";
const version = (header: Buffer) => (LITTLE_ENDIAN ? header.readUInt32LE(0) : header.readUInt32BE(0));

/**
 * Tells whether anything was committed to a WAL-mode database since it last looked, for the price
 * of one 96-byte read and no lock. SQLite keeps the WAL index in `<database>-shm`, shared by every
 * connection of every process, and rewrites its header on every commit (`iChange` counts them;
 * https://sqlite.org/walformat.html, "The WAL-Index Header"). A header that has not changed means
 * no commit; one that has, or that is being written (its two copies differ), means look again.
 * Hand-written because SQLite's own check (`PRAGMA data_version`) opens a read transaction,
 * which costs as much as the read it would save.
 */
export class CommitWatch {
  readonly #fd: number;
  readonly #now = Buffer.alloc(2 * HEADER_BYTES);
  readonly #last = Buffer.alloc(HEADER_BYTES);
  #known = false;

  private constructor(fd: number) {
    this.#fd = fd;
  }

  /** A watch on `db`'s commits; undefined when it keeps no shared WAL index (not WAL, in memory). */
  static open(db: Database.Database): CommitWatch | undefined {
    if (db.memory || db.pragma("journal_mode", { simple: true }) !== "wal") return undefined;
    try {
      return new CommitWatch(openSync(`${db.name}-shm`, "r"));
    } catch {
      return undefined;
    }
  }

  /**
   * True when nothing was committed since the previous call. False otherwise, and also when it
   * cannot tell; what is read after a false answer is current as of this call at least.
   */
  unchanged(): boolean {
    const now = this.#now;
    let whole: boolean;
    try {
      whole = readSync(this.#fd, now, 0, now.length, 0) === now.length;
    } catch {
      whole = false;
    }
    const settled =
      whole &&
      now[IS_INIT] === 1 &&
      version(now) === WAL_INDEX_VERSION &&
      now.compare(now, 0, HEADER_BYTES, HEADER_BYTES, 2 * HEADER_BYTES) === 0;
    if (settled && this.#known && now.compare(this.#last, 0, HEADER_BYTES, 0, HEADER_BYTES) === 0)
      return true;
    this.#known = settled;
    if (settled) now.copy(this.#last, 0, 0, HEADER_BYTES);
    return false;
  }

  close(): void {
    closeSync(this.#fd);
  }
}
