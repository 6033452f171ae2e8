import { stat } from "node:fs/promises";
import { type ChainHead, digestEquals, GENESIS, hmacHex, hmacRole, recordHash } from "./chain.js";
import { readLines } from "./files.js";

/** What is wrong with the first bad record. */
export type AuditProblem = "hash" | "hmac" | "prev" | "seq" | "parse" | "missing";

export interface AuditVerifyError {
  problem: AuditProblem;
  /** File (or table) and 1-based line (or row) of the bad record; line 0 when a whole file is missing. */
  file: string;
  line: number;
  seq?: number;
  message: string;
}

export interface AuditVerifyResult {
  ok: boolean;
  /**
   * Records that verified before the first error (all of them when ok). With a key, a record counts
   * once a checkpoint after it verified: records after the last good checkpoint are not counted.
   */
  records: number;
  /** False when no key was given: only the hash chain was checked, so a forger could have rebuilt it. */
  hmacChecked: boolean;
  /** Checkpoints (signed records) whose HMAC verified; 0 without a key. */
  checkpoints: number;
  /**
   * Records at the end that no checkpoint signs (without a key: those after the last record that
   * carries an HMAC). With a key they fail verification, so this is 0 whenever `ok` is.
   */
  uncovered: number;
  /** The last good record: keep it somewhere else and pass it as `from` (or compare) to detect a cut tail. */
  last: ChainHead;
  firstError?: AuditVerifyError;
}

export interface ChainCheck<Where = undefined> {
  problem: AuditProblem;
  seq?: number;
  message: string;
  /** Where the record named by `seq` was, when it is not the record just checked (the first record a missing checkpoint should have signed). */
  at?: Where;
}

/**
 * Checks records one by one against the chain: shape, own hash, sequence, link to the previous
 * record and, with a key, the checkpoints: every record must be followed by a record whose HMAC
 * verifies (old logs sign every record, so each is its own checkpoint). Shared by the file, spool
 * and database verifiers; `where` is the caller's position of each record, for errors about an
 * earlier one. Call `finish` after the last record.
 */
export class ChainVerifier<Where = undefined> {
  head: ChainHead;
  /** Records checked, and (with a key) signed by a checkpoint: the count rolls back to it on an error. */
  records = 0;
  checkpoints = 0;
  /** The last record a verified checkpoint (or the trusted starting point) covers. */
  covered: ChainHead;
  readonly #key: Buffer | undefined;
  /** Records checked since the last checkpoint. */
  #open: { first: Where; firstSeq: number; count: number; hmac: string } | undefined;
  /** Without a key: records after the last one that carries an HMAC. */
  #unsignedTail = 0;
  /** Records the last rollback forgot. */
  #forgotten = 0;

  constructor(key: Buffer | undefined, from: ChainHead = GENESIS) {
    this.#key = key;
    this.head = { ...from };
    this.covered = { ...from };
  }

  /** Records at the end not signed by a checkpoint. */
  get uncovered(): number {
    return this.#key ? (this.#open?.count ?? this.#forgotten) : this.#unsignedTail;
  }

  /**
   * Checks the next record (a parsed JSON value); advances the head when it is good. `also` is a
   * caller's own check of the record, run once the chain checks pass and before the head moves.
   */
  check(
    value: unknown,
    where?: Where,
    also?: () => ChainCheck<Where> | undefined,
  ): ChainCheck<Where> | undefined {
    const shape = shapeProblem(value);
    if (shape) return this.#fail({ problem: "parse", message: shape });
    const record = value as { seq: number; prev: string; hash: string; hmac: string };
    const { seq } = record;
    if (!digestEquals(recordHash(record), record.hash)) {
      return this.#fail({ problem: "hash", seq, message: `record ${seq} does not match its hash (edited)` });
    }
    const role = hmacRole(record.hmac).role;
    if (this.#key && role === "checkpoint" && !digestEquals(hmacHex(this.#key, record.hash), record.hmac)) {
      return this.#fail({
        problem: "hmac",
        seq,
        message: `record ${seq} has a bad hmac (forged, or signed with another key)${this.#unsignedSince(seq)}`,
      });
    }
    const expected = this.head.seq + 1;
    if (seq > expected) {
      return this.#fail({
        problem: "missing",
        seq,
        message: `expected record ${expected}, found ${seq} (records missing)`,
      });
    }
    if (seq < expected) {
      return this.#fail({
        problem: "seq",
        seq,
        message: `expected record ${expected}, found ${seq} (reordered or duplicated)`,
      });
    }
    if (record.prev !== this.head.hash) {
      return this.#fail({
        problem: "prev",
        seq,
        message: `record ${seq} does not link to the record before it`,
      });
    }
    const own = also?.();
    if (own) return this.#fail(own);
    this.head = { seq, hash: record.hash };
    this.records++;
    if (!this.#key) {
      this.covered = this.head;
      this.#unsignedTail = role === "checkpoint" ? 0 : this.#unsignedTail + 1;
    } else if (role === "checkpoint") {
      this.covered = this.head;
      this.checkpoints++;
      this.#open = undefined;
      this.#forgotten = 0;
    } else if (this.#open) {
      this.#open.count++;
      this.#open.hmac = record.hmac;
    } else {
      this.#open = { first: where as Where, firstSeq: seq, count: 1, hmac: record.hmac };
    }
    return undefined;
  }

  /** After the last record: with a key, records no checkpoint signs are an error (named by the first of them). */
  finish(): ChainCheck<Where> | undefined {
    const open = this.#open;
    if (!this.#key || !open) return undefined;
    const range = this.#range(open.firstSeq, this.head.seq);
    const role = hmacRole(open.hmac);
    const why =
      role.role === "covered"
        ? `the log ends before record ${role.by}, the checkpoint that would sign ${open.count === 1 ? "it" : "them"} (a batch cut short, or records cut from or appended to the end)`
        : "appended without the key, or by an unsigned sink";
    const check: ChainCheck<Where> = {
      problem: "hmac",
      seq: open.firstSeq,
      message: `${range} ${open.count === 1 ? "is" : "are"} not signed by any checkpoint: ${why}`,
      at: open.first,
    };
    this.rollback();
    return check;
  }

  /** Forgets the records after the last checkpoint, as if they had not been read (a reader of a log still being written). */
  rollback(): void {
    this.#forgotten = this.#open?.count ?? 0;
    if (!this.#open) return;
    this.records -= this.#open.count;
    this.#open = undefined;
    this.head = { ...this.covered };
  }

  #fail(check: ChainCheck<Where>): ChainCheck<Where> {
    this.rollback();
    return check;
  }

  /** ", so records a–b are not authenticated" for a failed checkpoint that had records waiting for it. */
  #unsignedSince(seq: number): string {
    const open = this.#open;
    return open ? `; ${this.#range(open.firstSeq, seq)} are not authenticated` : "";
  }

  #range(first: number, last: number): string {
    return first === last ? `record ${first}` : `records ${first}–${last} (${last - first + 1})`;
  }
}

const HEX64 = /^[0-9a-f]{64}$/;

function shapeProblem(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "not a json object";
  const r = value as Record<string, unknown>;
  if (typeof r.seq !== "number" || !Number.isSafeInteger(r.seq) || r.seq < 1) return "no valid `seq`";
  if (typeof r.prev !== "string" || !HEX64.test(r.prev)) return "no valid `prev`";
  if (typeof r.hash !== "string" || !HEX64.test(r.hash)) return "no valid `hash`";
  if (typeof r.hmac !== "string") return "no `hmac`";
  return undefined;
}

export interface VerifyOptions {
  /** Start from this anchor instead of the beginning (to verify a tail after old files were archived). */
  from?: ChainHead;
  /** How far past a gap to look for the expected record, to tell "reordered" from "missing". Default 64. */
  lookahead?: number;
}

/**
 * Verifies JSONL audit files as one chain, in the order given (for a rotated log: `audit.1.jsonl`,
 * `audit.2.jsonl`, ..., `audit.jsonl`; see `auditFiles`). Reports the first edited, deleted,
 * reordered, forged or truncated record. Without a key only the hash chain is checked.
 * A cut at a record boundary at the very end cannot be seen from the log alone: compare `last`
 * with a copy kept elsewhere.
 */
export async function verifyAuditLog(
  paths: string[],
  key?: Buffer | string,
  options: VerifyOptions = {},
): Promise<AuditVerifyResult> {
  const keyBuf = typeof key === "string" ? Buffer.from(key, "utf8") : key;
  const verifier = new ChainVerifier<{ file: string; line: number }>(keyBuf, options.from);
  const lookahead = options.lookahead ?? 64;
  const result = (firstError?: AuditVerifyError) => verifyResult(verifier, keyBuf, firstError);
  const failure = (problem: ChainCheck<{ file: string; line: number }>, file: string, line: number) => {
    const error: AuditVerifyError = {
      problem: problem.problem,
      ...(problem.at ?? { file, line }),
      message: problem.message,
    };
    if (problem.seq !== undefined) error.seq = problem.seq;
    return error;
  };
  for (const file of paths) {
    try {
      await stat(file);
    } catch {
      return result({ problem: "missing", file, line: 0, message: `\`${file}\` does not exist` });
    }
    let error: AuditVerifyError | undefined;
    let expected = 0;
    let scanned = 0;
    for await (const { text, line } of readLines(file)) {
      if (error) {
        // Past a gap: if the expected record turns up, the records were reordered, not lost.
        if (seqOf(text) === expected) {
          error.problem = "seq";
          error.message = `${error.message.replace(/ \(records missing\)$/, "")} (reordered)`;
          break;
        }
        if (++scanned >= lookahead) break;
        continue;
      }
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        verifier.rollback();
        return result({
          problem: "parse",
          file,
          line,
          message: text.length === 0 ? "empty line" : "not valid json (a torn or edited line)",
        });
      }
      expected = verifier.head.seq + 1;
      const problem = verifier.check(value, { file, line });
      if (!problem) continue;
      error = failure(problem, file, line);
      if (problem.problem !== "missing") break;
    }
    if (error) return result(error);
  }
  const tail = verifier.finish();
  return result(tail && failure(tail, "", 0));
}

/** The result of a verifier that stopped (at `firstError`, if any). */
export function verifyResult(
  verifier: ChainVerifier<unknown>,
  key: Buffer | undefined,
  firstError?: AuditVerifyError,
): AuditVerifyResult {
  return {
    ok: !firstError,
    records: verifier.records,
    hmacChecked: key !== undefined,
    checkpoints: verifier.checkpoints,
    uncovered: verifier.uncovered,
    last: { ...verifier.head },
    ...(firstError ? { firstError } : {}),
  };
}

function seqOf(text: string): number | undefined {
  try {
    const seq = (JSON.parse(text) as { seq?: unknown }).seq;
    return typeof seq === "number" ? seq : undefined;
  } catch {
    return undefined;
  }
}
