import { rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { canonicalJson, sha256Hex } from "../core/canonical.js";
import { auditFiles } from "./files.js";
import { queryAudit, tailAudit } from "./query.js";
import type { SqliteAuditSink } from "./sqlite-sink.js";
import type { AuditEvent, AuditRecord } from "./types.js";

/** What `levelSqliteWithJsonl` did. */
export interface LevelResult {
  /** Records the copy held that the log of record does not (never acknowledged): removed. */
  removed: number;
  /** Records of the log the copy lacked: copied. */
  copied: number;
  /** The copy did not share a record with the last `window` records of the log: rebuilt from the whole log. */
  rebuilt: boolean;
  /** Why nothing was done, when nothing could be. */
  skipped?: string;
}

export interface LevelOptions {
  /** The active JSONL log (its rotated siblings are read too). */
  jsonl: string;
  sqlite: SqliteAuditSink;
  /** The fanout's spool directory: a spool still owed to the JSONL log postpones levelling; the copy's own spool is covered by it and removed. */
  spoolDir?: string;
  /** Spool names of the two sinks behind the fanout; default `jsonl` and `sqlite`. */
  names?: { jsonl: string; sqlite: string };
  /** How many of the last records are compared; default 10,000. */
  window?: number;
}

/**
 * Brings the SQLite copy of the audit trail level with the JSONL log, the record of truth: the
 * JSONL log is fsynced before a decision is acknowledged, the copy commits on its own schedule, so
 * after a crash the copy can lack the log's last records or hold records the log never
 * acknowledged. Records are matched by their content (the event without its chain fields; the
 * copy has its own chain); from the last record both hold, the copy's later records are removed
 * and the log's later records copied in order. Run before the copy takes new records.
 */
export async function levelSqliteWithJsonl(options: LevelOptions): Promise<LevelResult> {
  const names = options.names ?? { jsonl: "jsonl", sqlite: "sqlite" };
  const window = options.window ?? 10_000;
  if (options.spoolDir && (await exists(join(options.spoolDir, `${names.jsonl}.spool.jsonl`)))) {
    return { removed: 0, copied: 0, rebuilt: false, skipped: "the JSONL log still has a spool to drain" };
  }
  const sqlite = options.sqlite;
  // The usual case, cheaply: both end with the same record.
  const last = (await exists(options.jsonl)) ? await tailAudit(options.jsonl, 1) : [];
  const lastCopied = sqlite.recentRecords(1);
  if (
    last.length === lastCopied.length &&
    (last.length === 0 || digest(last[0]!) === digest(JSON.parse(lastCopied[0]!.record) as AuditRecord))
  ) {
    return { removed: 0, copied: 0, rebuilt: false };
  }
  const tail = (await exists(options.jsonl)) ? await tailAudit(options.jsonl, window) : [];
  const copy = sqlite.recentRecords(window + 1000);
  const positions = new Map<string, number>();
  for (let i = 0; i < tail.length; i++) positions.set(digest(tail[i]!), i);
  let anchor: { seq: number; index: number } | undefined;
  for (let i = copy.length - 1; i >= 0 && !anchor; i--) {
    const index = positions.get(digest(JSON.parse(copy[i]!.record) as AuditRecord));
    if (index !== undefined) anchor = { seq: copy[i]!.seq, index };
  }
  let result: LevelResult;
  if (anchor) {
    const removed = sqlite.truncateAfter(anchor.seq);
    const copied = await append(sqlite, tail.slice(anchor.index + 1));
    result = { removed, copied, rebuilt: false };
  } else if (copy.length === 0 && tail.length < window) {
    result = { removed: 0, copied: await append(sqlite, tail), rebuilt: false };
  } else if (tail.length === 0) {
    result = { removed: sqlite.truncateAfter(0), copied: 0, rebuilt: copy.length > 0 };
  } else {
    const removed = sqlite.truncateAfter(0);
    let copied = 0;
    let batch: AuditRecord[] = [];
    for await (const record of queryAudit(await auditFiles(options.jsonl))) {
      batch.push(record);
      if (batch.length >= 1000) {
        copied += await append(sqlite, batch);
        batch = [];
      }
    }
    copied += await append(sqlite, batch);
    result = { removed, copied, rebuilt: true };
  }
  if (options.spoolDir) {
    // Everything the copy's spool held is in the log, and so now in the copy.
    for (const suffix of ["spool.jsonl", "spool.cursor", "spool.jsonl.lock"]) {
      await rm(join(options.spoolDir, `${names.sqlite}.${suffix}`), { force: true });
    }
  }
  return result;
}

async function append(sqlite: SqliteAuditSink, records: AuditRecord[]): Promise<number> {
  const writes = records.map((record) => sqlite.append(eventOf(record)));
  await Promise.all(writes);
  await sqlite.flush();
  return records.length;
}

/** The event a record was sealed from. */
function eventOf(record: AuditRecord): AuditEvent {
  const {
    seq: _s,
    prev: _p,
    hash: _h,
    hmac: _m,
    chain: _c,
    ...event
  } = record as AuditRecord & { chain?: string };
  return event as AuditEvent;
}

function digest(record: AuditRecord): string {
  return sha256Hex(canonicalJson(eventOf(record)));
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
