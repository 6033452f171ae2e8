import { stat } from "node:fs/promises";
import { type ChainHead, digestEquals, GENESIS, hmacHex, recordHash } from "./chain.js";
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
  /** Records that verified before the first error (all of them when ok). */
  records: number;
  /** False when no key was given: only the hash chain was checked, so a forger could have rebuilt it. */
  hmacChecked: boolean;
  /** The last good record: keep it somewhere else and pass it as `from` (or compare) to detect a cut tail. */
  last: ChainHead;
  firstError?: AuditVerifyError;
}

export interface ChainCheck {
  problem: AuditProblem;
  seq?: number;
  message: string;
}

/**
 * Checks records one by one against the chain: shape, own hash, HMAC (when a key is given),
 * sequence and link to the previous record. Shared by the file and database verifiers.
 */
export class ChainVerifier {
  head: ChainHead;
  records = 0;
  readonly #key: Buffer | undefined;

  constructor(key: Buffer | undefined, from: ChainHead = GENESIS) {
    this.#key = key;
    this.head = { ...from };
  }

  /** Checks the next record (a parsed JSON value); advances the head when it is good. */
  check(value: unknown): ChainCheck | undefined {
    const shape = shapeProblem(value);
    if (shape) return { problem: "parse", message: shape };
    const record = value as { seq: number; prev: string; hash: string; hmac: string };
    const { seq } = record;
    if (!digestEquals(recordHash(record), record.hash)) {
      return { problem: "hash", seq, message: `record ${seq} does not match its hash (edited)` };
    }
    if (this.#key && !digestEquals(hmacHex(this.#key, record.hash), record.hmac)) {
      return {
        problem: "hmac",
        seq,
        message: `record ${seq} has a bad hmac (forged, or signed with another key)`,
      };
    }
    const expected = this.head.seq + 1;
    if (seq > expected) {
      return {
        problem: "missing",
        seq,
        message: `expected record ${expected}, found ${seq} (records missing)`,
      };
    }
    if (seq < expected) {
      return {
        problem: "seq",
        seq,
        message: `expected record ${expected}, found ${seq} (reordered or duplicated)`,
      };
    }
    if (record.prev !== this.head.hash) {
      return { problem: "prev", seq, message: `record ${seq} does not link to the record before it` };
    }
    this.head = { seq, hash: record.hash };
    this.records++;
    return undefined;
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
  const verifier = new ChainVerifier(keyBuf, options.from);
  const lookahead = options.lookahead ?? 64;
  const result = (firstError?: AuditVerifyError): AuditVerifyResult => ({
    ok: !firstError,
    records: verifier.records,
    hmacChecked: keyBuf !== undefined,
    last: { ...verifier.head },
    ...(firstError ? { firstError } : {}),
  });
  for (const file of paths) {
    try {
      await stat(file);
    } catch {
      return result({ problem: "missing", file, line: 0, message: `\`${file}\` does not exist` });
    }
    let error: AuditVerifyError | undefined;
    let scanned = 0;
    for await (const { text, line } of readLines(file)) {
      if (error) {
        // Past a gap: if the expected record turns up, the records were reordered, not lost.
        if (seqOf(text) === verifier.head.seq + 1) {
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
        return result({
          problem: "parse",
          file,
          line,
          message: text.length === 0 ? "empty line" : "not valid json (a torn or edited line)",
        });
      }
      const problem = verifier.check(value);
      if (!problem) continue;
      error = { problem: problem.problem, file, line, message: problem.message };
      if (problem.seq !== undefined) error.seq = problem.seq;
      if (problem.problem !== "missing") break;
    }
    if (error) return result(error);
  }
  return result();
}

function seqOf(text: string): number | undefined {
  try {
    const seq = (JSON.parse(text) as { seq?: unknown }).seq;
    return typeof seq === "number" ? seq : undefined;
  } catch {
    return undefined;
  }
}
