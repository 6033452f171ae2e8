/**
 * The audit trail: hash-chained, HMAC-signed records of every decision, written to JSON Lines
 * files (here), SQLite (`./sqlite-sink.js`) or PostgreSQL (`./postgres-sink.js`) — the database sinks
 * are separate entry points so that importing this module loads no database driver.
 */

export type { AuditArgsMode, AuditedArgs } from "../core/redact.js";
export { auditArgs } from "../core/redact.js";
export type { AuditKeyOptions, ChainHead, SigningOptions } from "./chain.js";
export { canonicalJson, hashValue, resolveAuditKey, ZERO_HASH } from "./chain.js";
export type { RecordRow, VerifyRowsOptions } from "./db-rows.js";
export { verifyRows } from "./db-rows.js";
export { AuditKeyError, AuditSinkError } from "./errors.js";
export type { FanoutOptions, FanoutTargetStatus } from "./fanout.js";
export { FanoutAuditSink } from "./fanout.js";
export { auditFiles } from "./files.js";
export type { Durability, JsonlSinkOptions } from "./jsonl-sink.js";
export { JsonlAuditSink } from "./jsonl-sink.js";
export type { AuditFilter, FollowOptions } from "./query.js";
export { followAudit, queryAudit, tailAudit } from "./query.js";
export type { ReceiptOptions } from "./receipt.js";
export { shareReceipt } from "./receipt.js";
export type { AuditEvent, AuditRecord, AuditSink } from "./types.js";
export type { AuditProblem, AuditVerifyError, AuditVerifyResult, VerifyOptions } from "./verify.js";
export { verifyAuditLog } from "./verify.js";
