export type { Agent, Call } from "./call.js";
export type { Decision, Finding, FlowEvidence } from "./decision.js";
export {
  ApprovalRequiredError,
  formatIssue,
  PolicyDeniedError,
  PolicyLoadError,
  ToolwardenError,
} from "./errors.js";
export type { PolicyIssue, SourcePosition } from "./errors.js";
export { isVerdict, moreSevere, RISK_LEVELS, SEVERITY, VERDICTS } from "./verdict.js";
export type { RiskLevel, Verdict } from "./verdict.js";
