import type { Decision } from "./decision.js";

/** Every `ToolwardenError.code`, with what it means: stable, for programs to match on. */
export const ERROR_CODES = {
  policy_invalid: "a policy failed validation; `issues` name file:line:col (PolicyLoadError)",
  policy_compile: "an uploaded policy could not be compiled",
  denied: "the policy denied the call (PolicyDeniedError)",
  approval_required: "the call waits for a human's approval (ApprovalRequiredError)",
  plan_invalid: "a plan is malformed (steps, ttl, tests) or too many are live",
  scope_invalid: "a scope is malformed",
  session_refused: "a session cannot be opened (caps, ownership)",
  store_unavailable: "the state store did not answer in time or failed",
  store_url: "a store URL names no known backend or no database",
  missing_package: "an optional package this feature needs is not installed",
  audit_key: "the audit key is missing or unreadable",
  audit_sink: "an audit sink cannot be opened or written",
  audit_records: "audit records failed verification",
  pin_ledger: "the MCP pin ledger is unreadable or its chain is broken",
  keys_file: "the server's API key file is unreadable",
  keys_busy: "the API keys shared through the state store changed concurrently too often",
  versions_busy: "the policy versions shared through the state store changed concurrently too often",
  key_agent: "an agent API key needs the agent id it is bound to",
  key_attrs: "an API key's attributes are malformed",
  no_rollback: "there is no earlier policy version to roll back to",
  version_unknown: "no stored policy version has this hash",
  version_changed: "a stored policy version now compiles differently (a file it extends changed)",
  versions_file: "the stored policy versions are unreadable",
  "url.private": "a pinned HTTP connection was refused: a private or unix-socket address",
  "url.metadata": "a pinned HTTP connection was refused: a cloud metadata address",
} as const;

/** A `ToolwardenError` code: a key of `ERROR_CODES`. */
export type ToolwardenErrorCode = keyof typeof ERROR_CODES;

/** Base of every error toolwarden throws; `code` (one of `ERROR_CODES`) is stable for programs to match on. */
export class ToolwardenError extends Error {
  readonly code: ToolwardenErrorCode;
  constructor(code: ToolwardenErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A source position for a policy error. Lines and columns are 1-based. */
export interface SourcePosition {
  file: string;
  line: number;
  col: number;
}

export interface PolicyIssue extends SourcePosition {
  message: string;
  /**
   * What kind of problem, for programs: `yaml` (the text does not parse), `unknown_key`,
   * `invalid_value` (not one of the allowed words), a schema check's own code (`invalid_type`,
   * `too_small`, ...), or `invalid` for the compiler's other checks.
   */
  code?: string;
  /** Dotted path of the key or value in the document (`rules.0.when`), when the issue is about one. */
  path?: string;
  /** A short code frame pointing at the position, when the source is known. */
  frame?: string;
  help?: string;
}

/** A policy failed to load; every issue names file:line:col. */
export class PolicyLoadError extends ToolwardenError {
  readonly issues: PolicyIssue[];
  constructor(issues: PolicyIssue[]) {
    super("policy_invalid", issues.map(formatIssue).join("\n"));
    this.issues = issues;
  }
}

export function formatIssue(issue: PolicyIssue): string {
  return `${issue.file}:${issue.line}:${issue.col}: ${issue.message}`;
}

/** The policy denied the call. */
export class PolicyDeniedError extends ToolwardenError {
  readonly decision: Decision;
  constructor(decision: Decision) {
    super("denied", `toolwarden denied \`${decision.tool ?? "call"}\`: ${decision.reason}`);
    this.decision = decision;
  }
}

/** The policy wants a human to approve the call first. */
export class ApprovalRequiredError extends ToolwardenError {
  readonly decision: Decision;
  constructor(decision: Decision) {
    super("approval_required", `\`${decision.tool ?? "call"}\` needs approval: ${decision.reason}`);
    this.decision = decision;
  }
}
