export type { Agent, Call } from "./call.js";
export { canonicalJson, hashValue, sha256Hex } from "./canonical.js";
export type { Decision, Finding, FlowEvidence } from "./decision.js";
export { mayRun } from "./decision.js";
export {
  ApprovalRequiredError,
  ERROR_CODES,
  formatIssue,
  PolicyDeniedError,
  PolicyLoadError,
  ToolwardenError,
} from "./errors.js";
export type { PolicyIssue, SourcePosition, ToolwardenErrorCode } from "./errors.js";
export { isVerdict, moreSevere, RISK_LEVELS, SEVERITY, VERDICTS } from "./verdict.js";
export type { RiskLevel, Verdict } from "./verdict.js";
export { auditArgs } from "./redact.js";
export type { AuditArgsMode, AuditedArgs } from "./redact.js";
export { approvalRule, BUILTIN_RULES } from "./rules.js";
export { clause, sentence } from "./sentence.js";
