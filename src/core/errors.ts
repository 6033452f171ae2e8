import type { Decision } from "./decision.js";

/** Base of every error toolwarden throws; `code` is stable for programs to match on. */
export class ToolwardenError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
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
