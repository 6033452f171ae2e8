/**
 * toolwarden: a policy-enforcing reference monitor between AI agents and their tools.
 * The core entry point loads no adapter, store backend or server; those have their own subpaths.
 */
export {
  ApprovalRequiredError,
  ERROR_CODES,
  PolicyDeniedError,
  PolicyLoadError,
  SEVERITY,
  ToolwardenError,
  VERDICTS,
} from "./core/index.js";
export type {
  Agent,
  Call,
  Decision,
  Finding,
  FlowEvidence,
  PolicyIssue,
  RiskLevel,
  ToolwardenErrorCode,
  Verdict,
} from "./core/index.js";
export { evaluateCall, hashCall, Session, Warden } from "./gateway/index.js";
export type { SessionOptions, SessionReport, WardenOptions, WrapOptions } from "./gateway/index.js";
export {
  compilePolicy,
  compilePolicyFile,
  compilePolicyFileAsync,
  compilePolicyObject,
  compilePolicyObjectAsync,
  compilePolicyText,
  compilePolicyTextAsync,
  loadPolicyFile,
} from "./policy/index.js";
export type { CompiledPolicy } from "./policy/index.js";
export { MemoryStateStore } from "./stores/memory/index.js";
export type { Approval, StateStore } from "./stores/types.js";
export type { AuditEvent, AuditRecord, AuditSink } from "./audit/types.js";
export type { JudgedDecision, Judgement, JudgeOutcome } from "./judge/index.js";
export type { Plan, PlannedCall, PlanOptions, PlanStep, ScopeSpec } from "./plans/index.js";
