import { type ChainHead, digestEquals, hmacHex, hmacRole, type SealedRecord, sealBatch } from "./chain.js";
import { AuditSinkError } from "./errors.js";
import type { AuditEvent } from "./types.js";
import type { AuditVerifyError, AuditVerifyResult, ChainCheck } from "./verify.js";
import { ChainVerifier, verifyResult } from "./verify.js";

/**
 * Database sinks share one schema (docs/audit-schema.md). `audit_records.record` holds the exact
 * signed JSON text of each record; the other columns and tables are indexes derived from it for
 * queries, and `verifyRows` checks that the record columns still agree with it.
 */
export interface RecordRow {
  chain: string;
  seq: number;
  time: string;
  kind: string;
  session: string | null;
  agent: string | null;
  tool: string | null;
  server: string | null;
  verdict: string | null;
  rule: string | null;
  policy: string | null;
  args_hash: string | null;
  prev: string;
  hash: string;
  hmac: string;
  record: string;
}

export interface ViolationRow {
  chain: string;
  seq: number;
  idx: number;
  code: string;
  arg: string | null;
  verdict: string | null;
  message: string | null;
}

export interface ApprovalRow {
  chain: string;
  seq: number;
  approval_id: string;
  status: string;
  decided_by: string | null;
  reason: string | null;
}

/** The record columns, in insert order. */
export const RECORD_COLUMNS = [
  "chain",
  "seq",
  "time",
  "kind",
  "session",
  "agent",
  "tool",
  "server",
  "verdict",
  "rule",
  "policy",
  "args_hash",
  "prev",
  "hash",
  "hmac",
  "record",
] as const satisfies ReadonlyArray<keyof RecordRow>;

export const VIOLATION_COLUMNS = ["chain", "seq", "idx", "code", "arg", "verdict", "message"] as const;
export const APPROVAL_COLUMNS = ["chain", "seq", "approval_id", "status", "decided_by", "reason"] as const;

/** `SELECT <record columns>`, to read rows `verifyRows` checks. */
export const SELECT_RECORD_COLUMNS = `SELECT ${RECORD_COLUMNS.join(", ")}`;

/**
 * The tables one batch is written to: name, columns in insert order with their PostgreSQL types,
 * and which rows of `batchRows` go there.
 */
export const BATCH_TABLES = [
  {
    name: "audit_records",
    rows: "records",
    columns: RECORD_COLUMNS,
    types: [...["text", "bigint"], ...Array<string>(14).fill("text")],
  },
  {
    name: "audit_violations",
    rows: "violations",
    columns: VIOLATION_COLUMNS,
    types: ["text", "bigint", "integer", "text", "text", "text", "text"],
  },
  {
    name: "audit_approvals",
    rows: "approvals",
    columns: APPROVAL_COLUMNS,
    types: ["text", "bigint", "text", "text", "text", "text"],
  },
] as const;

/**
 * Columns derived from a field of the signed record: the writer fills them and `verifyRows` checks
 * them through `columnText`, from this one list. (`chain`, `seq`, `prev`, `hash` and `hmac` are
 * checked the same way.)
 */
const DERIVED: Array<[keyof RecordRow, string]> = [
  ["time", "time"],
  ["kind", "kind"],
  ["session", "session"],
  ["agent", "agent"],
  ["tool", "tool"],
  ["server", "server"],
  ["verdict", "verdict"],
  ["rule", "rule"],
  ["policy", "policy"],
  ["args_hash", "argsHash"],
];
const CHECKED: Array<[keyof RecordRow, string]> = [
  ...(["chain", "seq", "prev", "hash", "hmac"] as const).map((c): [keyof RecordRow, string] => [c, c]),
  ...DERIVED,
];

/** A column's text for a record's field; `time` and `kind` are never null. */
function columnText(record: Record<string, unknown>, column: keyof RecordRow, field: string): string | null {
  return textOrNull(record[field]) ?? (column === "time" || column === "kind" ? "" : null);
}

/**
 * The rows of a batch sealed onto `head` (see `sealBatch`), and the chain's head after it.
 * `headRecord` is the stored row at the head's seq: with a key, it must be a checkpoint signed
 * with it (see `checkHeadSigned`).
 */
export function batchRows(
  events: readonly AuditEvent[],
  head: ChainHead,
  headRecord: { hash: string; hmac: string } | undefined,
  key: Buffer | undefined,
  chain: string,
): { records: RecordRow[]; violations: ViolationRow[]; approvals: ApprovalRow[]; head: ChainHead } {
  checkHeadSigned(head, headRecord, key, chain);
  const records: RecordRow[] = [];
  const violations: ViolationRow[] = [];
  const approvals: ApprovalRow[] = [];
  for (const sealed of sealBatch(events, head, key, chain)) {
    const rows = recordRows(sealed, chain);
    records.push(rows.record);
    for (const v of rows.violations) violations.push(v);
    if (rows.approval) approvals.push(rows.approval);
  }
  const last = records[records.length - 1]!;
  return { records, violations, approvals, head: { seq: last.seq, hash: last.hash } };
}

/**
 * Refuses to extend a chain whose head is not a checkpoint signed with `key`: the next batch's
 * checkpoint would sign every record before it, so records written after the last checkpoint by
 * someone without the key (the head moved onto them) would become authenticated. `record` is the
 * row at the head's seq. Unsigned sinks (no key) check nothing.
 */
function checkHeadSigned(
  head: ChainHead,
  record: { hash: string; hmac: string } | undefined,
  key: Buffer | undefined,
  chain: string,
): void {
  if (!key || head.seq === 0) return;
  if (record?.hash === head.hash && hmacRole(record.hmac).role === "checkpoint") {
    if (digestEquals(hmacHex(key, record.hash), record.hmac)) return;
  }
  throw new AuditSinkError(
    `the head of audit chain \`${chain}\` (record ${head.seq}) is not a checkpoint signed with this key; refusing to extend it (verify the chain)`,
  );
}

/** The rows one sealed record becomes. */
export function recordRows(
  sealed: SealedRecord,
  chain: string,
): { record: RecordRow; violations: ViolationRow[]; approval?: ApprovalRow } {
  const r = sealed.record;
  const record = {
    chain,
    seq: r.seq,
    prev: r.prev,
    hash: r.hash,
    hmac: r.hmac,
    record: sealed.line,
  } as RecordRow;
  for (const [column, field] of DERIVED) {
    (record as unknown as Record<string, unknown>)[column] = columnText(
      r as unknown as Record<string, unknown>,
      column,
      field,
    );
  }
  const violations = (Array.isArray(r.findings) ? r.findings : []).map((f, idx) => ({
    chain,
    seq: r.seq,
    idx,
    code: textOrNull(f?.code) ?? "",
    arg: textOrNull(f?.arg),
    verdict: textOrNull(f?.verdict),
    message: textOrNull(f?.message),
  }));
  const a = r.approval;
  const approval =
    a && typeof a === "object"
      ? {
          chain,
          seq: r.seq,
          approval_id: textOrNull(a.id) ?? "",
          status: textOrNull(a.status) ?? "",
          decided_by: textOrNull(a.by),
          reason: textOrNull(a.reason),
        }
      : undefined;
  return approval ? { record, violations, approval } : { record, violations };
}

/**
 * Text for a derived column: NUL and lone surrogates cannot be stored as database text (PostgreSQL
 * rejects NUL; UTF-8 drivers replace lone surrogates), so both become U+FFFD. The signed `record`
 * JSON escapes them and stays exact; `verifyRows` compares columns through this same function.
 */
export function textOrNull(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  return String(value).replace(UNSTORABLE, "\uFFFD");
}

const UNSTORABLE = /\0|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

export interface VerifyRowsOptions {
  /** Names the table (and chain) in errors; default `audit_records`. */
  table?: string;
  /** Start from this anchor instead of the first record. */
  from?: ChainHead;
  /** Where the chain should end (the sink's `audit_chains` row): records cut from the end show as `missing`. */
  head?: ChainHead;
}

/**
 * Verifies the rows of one chain, in `seq` order, like `verifyAuditLog` does lines: each row's
 * `record` must hash and sign correctly and link to the row before, and its columns must agree with
 * it (an edited `verdict` column is caught even though the JSON is intact). `line` in errors is the
 * 1-based row number.
 */
export async function verifyRows(
  rows: Iterable<RecordRow> | AsyncIterable<RecordRow>,
  key: Buffer | string | undefined,
  options: VerifyRowsOptions = {},
): Promise<AuditVerifyResult> {
  const keyBuf = typeof key === "string" ? Buffer.from(key, "utf8") : key;
  const verifier = new ChainVerifier<number>(keyBuf, options.from);
  const table = options.table ?? "audit_records";
  const result = (firstError?: AuditVerifyError) => verifyResult(verifier, keyBuf, firstError);
  const failure = (problem: ChainCheck<number>, line: number): AuditVerifyError => ({
    problem: problem.problem,
    file: table,
    line: problem.at ?? line,
    ...(problem.seq === undefined ? {} : { seq: problem.seq }),
    message: problem.message,
  });
  let line = 0;
  for await (const row of rows) {
    line++;
    const seq = Number(row.seq);
    let value: Record<string, unknown>;
    try {
      value = JSON.parse(row.record);
    } catch {
      verifier.rollback();
      return result({
        problem: "parse",
        file: table,
        line,
        seq,
        message: `row ${seq}: \`record\` is not valid json`,
      });
    }
    if (typeof value?.seq === "number" && value.seq !== seq) {
      verifier.rollback();
      return result({
        problem: "seq",
        file: table,
        line,
        seq,
        message: `row ${seq} holds record ${value.seq} (moved)`,
      });
    }
    const problem = verifier.check(value, line, () => columnProblem(row, value, seq));
    if (problem) return result(failure(problem, line));
  }
  const tail = verifier.finish();
  if (tail) return result(failure(tail, line + 1));
  const head = options.head;
  if (head && (head.seq !== verifier.head.seq || head.hash !== verifier.head.hash)) {
    return result({
      problem: head.seq > verifier.head.seq ? "missing" : "seq",
      file: table,
      line: line + 1,
      seq: head.seq,
      message: `the chain head says record ${head.seq}, the rows end at ${verifier.head.seq}`,
    });
  }
  return result();
}

/** A derived column that no longer equals the signed record's field. */
function columnProblem(
  row: RecordRow,
  value: Record<string, unknown>,
  seq: number,
): ChainCheck<number> | undefined {
  for (const [column, field] of CHECKED) {
    const stored = textOrNull(row[column]);
    const signed = columnText(value, column, field);
    if (stored !== signed) {
      return {
        problem: "hash",
        seq,
        message: `row ${seq}: column \`${column}\` does not match the signed record`,
      };
    }
  }
  return undefined;
}
