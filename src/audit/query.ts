import { type FileHandle, open, stat } from "node:fs/promises";
import { StringDecoder } from "node:string_decoder";
import type { Verdict } from "../core/index.js";
import { auditFiles, readLines, readTailLines } from "./files.js";
import type { AuditRecord } from "./types.js";

/** Which records to return. Every given field must match; `tool` and `agent` take `*` and `?` globs. */
export interface AuditFilter {
  agent?: string;
  tool?: string;
  session?: string;
  verdict?: Verdict | Verdict[];
  kind?: AuditRecord["kind"];
  /** Inclusive lower bound on `time`. */
  since?: Date | string;
  /** Exclusive upper bound on `time`. */
  until?: Date | string;
}

/** A compiled filter: a predicate over records. Throws on an invalid `since`/`until`. */
export function compileFilter(filter: AuditFilter): (record: AuditRecord) => boolean {
  const tool = filter.tool === undefined ? undefined : globToRegExp(filter.tool);
  const agent = filter.agent === undefined ? undefined : globToRegExp(filter.agent);
  const verdicts =
    filter.verdict === undefined
      ? undefined
      : new Set<string>(Array.isArray(filter.verdict) ? filter.verdict : [filter.verdict]);
  const since = filter.since === undefined ? undefined : toTime(filter.since, "since");
  const until = filter.until === undefined ? undefined : toTime(filter.until, "until");
  return (record) => {
    if (tool && !(typeof record.tool === "string" && tool.test(record.tool))) return false;
    if (agent && !(typeof record.agent === "string" && agent.test(record.agent))) return false;
    if (filter.session !== undefined && record.session !== filter.session) return false;
    if (filter.kind !== undefined && record.kind !== filter.kind) return false;
    if (verdicts && !verdicts.has(String(record.verdict))) return false;
    if (since !== undefined || until !== undefined) {
      const time = Date.parse(String(record.time));
      if (Number.isNaN(time)) return false;
      if (since !== undefined && time < since) return false;
      if (until !== undefined && time >= until) return false;
    }
    return true;
  };
}

function toTime(value: Date | string, name: string): number {
  const time = value instanceof Date ? value.getTime() : Date.parse(value);
  if (Number.isNaN(time)) throw new RangeError(`\`${name}\` is not a valid time: \`${String(value)}\``);
  return time;
}

function globToRegExp(glob: string): RegExp {
  const source = glob
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replaceAll("*", ".*")
    .replaceAll("?", ".");
  return new RegExp(`^${source}$`, "s");
}

/** Parses a log line into a record; undefined for a line that is not one (torn, blank, edited). */
export function parseRecordLine(line: string): AuditRecord | undefined {
  if (line.length === 0) return undefined;
  try {
    const value = JSON.parse(line) as AuditRecord;
    return value && typeof value === "object" && typeof value.seq === "number" ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Streams the records of JSONL audit files, in order, that match `filter`. Lines that are not
 * records are skipped: use `verifyAuditLog` to judge integrity.
 */
export async function* queryAudit(paths: string[], filter: AuditFilter = {}): AsyncGenerator<AuditRecord> {
  const matches = compileFilter(filter);
  for (const path of paths) {
    for await (const { text } of readLines(path)) {
      const record = parseRecordLine(text);
      if (record && matches(record)) yield record;
    }
  }
}

/** The last `n` records of a log, oldest first, reaching into rotated files when the active one has fewer. */
export async function tailAudit(active: string, n: number): Promise<AuditRecord[]> {
  const files = (await auditFiles(active)).reverse();
  const out: AuditRecord[] = [];
  for (const file of files) {
    if (out.length >= n) break;
    const exists = await stat(file).then(
      () => true,
      () => false,
    );
    if (!exists) continue;
    const { lines } = await readTailLines(file, n - out.length);
    const records = lines.map(parseRecordLine).filter((r): r is AuditRecord => r !== undefined);
    out.unshift(...records.slice(Math.max(0, records.length - (n - out.length))));
  }
  return out;
}

export interface FollowOptions {
  signal?: AbortSignal;
  /** How often to look for new lines. Default 250 ms. */
  pollMs?: number;
  /** Start at the beginning of the active file instead of its end. */
  fromStart?: boolean;
}

/**
 * Yields records appended to a log from now on (like `tail -f`), until `signal` aborts. Follows
 * rotation: when the active file is renamed away, the rest of the old file is read before the new one.
 */
export async function* followAudit(active: string, options: FollowOptions = {}): AsyncGenerator<AuditRecord> {
  const pollMs = options.pollMs ?? 250;
  const signal = options.signal;
  let handle: FileHandle | undefined;
  let pos = 0;
  let carry = "";
  let decoder = new StringDecoder("utf8");
  const openActive = async (atEnd: boolean) => {
    try {
      handle = await open(active, "r");
      pos = atEnd ? (await handle.stat()).size : 0;
    } catch {
      handle = undefined;
    }
    carry = "";
    decoder = new StringDecoder("utf8");
  };
  await openActive(!options.fromStart);
  const buf = Buffer.alloc(1 << 16);
  try {
    while (!signal?.aborted) {
      let progressed = false;
      if (handle) {
        const { bytesRead } = await handle.read(buf, 0, buf.length, pos);
        if (bytesRead > 0) {
          progressed = true;
          pos += bytesRead;
          const text = carry + decoder.write(buf.subarray(0, bytesRead));
          const lines = text.split("\n");
          carry = lines.pop()!;
          for (const line of lines) {
            const record = parseRecordLine(line);
            if (record) yield record;
          }
        }
      }
      if (progressed) continue;
      // At the end of our file: has the log been rotated (or created) under us?
      const current = await stat(active).catch(() => undefined);
      const mine = handle ? await handle.stat() : undefined;
      if (current && (!mine || current.ino !== mine.ino)) {
        await handle?.close();
        await openActive(false);
        continue;
      }
      if (current && current.size < pos) {
        // A torn tail was cut on reopen: drop the fragment we hold and go on from the new end.
        pos = current.size;
        carry = "";
        decoder = new StringDecoder("utf8");
      }
      await sleep(pollMs, signal);
    }
  } finally {
    await handle?.close();
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}
