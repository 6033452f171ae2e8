import type { Finding, FlowEvidence, Verdict } from "../core/index.js";

/** What happened, as the gateway reports it to the audit trail. */
export interface AuditEvent {
  kind: "decision" | "approval" | "output" | "policy" | "pin";
  /** ISO-8601 time. */
  time: string;
  session?: string;
  agent?: string;
  tool?: string;
  server?: string;
  verdict?: Verdict;
  /** `false`: the policy observed this verdict and the call proceeded (`mode: observe`, `enforce: false`). */
  enforced?: false;
  /** Rules or limits with `enforce: false` that matched but did not decide. */
  observed?: string[];
  /** Every rule, limit or check that contributed, most severe first (the Decision's `matched`). */
  matched?: string[];
  rule?: string | null;
  reason?: string;
  findings?: Finding[];
  labels?: string[];
  flows?: FlowEvidence[];
  /** SHA-256 of the canonical JSON of the arguments (always present for calls). */
  argsHash?: string;
  /** Raw or redacted arguments, only when the policy's `audit.args` says so. */
  args?: unknown;
  policy?: string;
  approval?: { id: string; status: string; by?: string; reason?: string };
  /** Anything else the event kind needs. */
  data?: Record<string, unknown>;
}

/** An event as stored: numbered, chained and signed. */
export interface AuditRecord extends AuditEvent {
  /** Which chain the record belongs to when several writers share one table (database sinks). */
  chain?: string;
  /** 1 for the first record of a chain, then +1 per record, across rotated files. */
  seq: number;
  /** Hex SHA-256 of the previous record's `hash` ("0"*64 for the first). */
  prev: string;
  /** Hex SHA-256 over the canonical JSON of the record without `hash` and `hmac`. */
  hash: string;
  /**
   * The last record of each written batch (its checkpoint): hex HMAC-SHA256 of `hash` with the
   * audit key, which authenticates it and, through `prev`, every record before it. The other records
   * of the batch: `@<seq of the checkpoint>`. Logs written before checkpoints sign every record.
   * Empty for an unsigned sink.
   */
  hmac: string;
}

/**
 * Where audit events go. `append` resolves once the record is as durable as the sink promises
 * (for the JSONL sink: written and fsynced with its batch); it rejects if the record cannot be kept,
 * and the gateway then fails closed.
 */
export interface AuditSink {
  readonly kind: string;
  append(event: AuditEvent): Promise<void>;
  flush(): Promise<void>;
  close(): Promise<void>;
}
