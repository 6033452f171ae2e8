/**
 * The ids of the contributions the engine makes itself (rules, limits and findings are named by
 * the policy and the analyzers). One table, so stages and readers compare against the same names.
 */
export const BUILTIN_RULES = {
  /** The call is not a well-formed call object. */
  malformedCall: "malformed-call",
  /** The engine failed; `fail:` chose the verdict. */
  internalError: "internal-error",
  /** The state store failed or missed its deadline; `fail:` chose the verdict. */
  storeUnavailable: "store-unavailable",
  /** The call's cost would overspend the budget. */
  budget: "budget",
  /** The call's cost is above `budget.ask_above`. */
  budgetAskAbove: "budget.ask_above",
  /** The judge's answer replaced a `verdict: judge` rule's ask. */
  judge: "judge",
  /** `judge: { for: undecided }` stood in for the default. */
  judgeUndecided: "judge:undecided",
  /** No approver answered in time. */
  approvalTimeout: "approval-timeout",
  /** An audit sink is down and its spool is full (fail: closed). */
  auditBacklog: "audit-backlog",
  /** The audit record could not be written (fail: closed). */
  auditUnavailable: "audit-unavailable",
  /** A session cannot be opened (the store's caps, or another agent owns it). */
  sessionLimit: "session-limit",
  /** A tool's output was withheld: a detector under `detect: { <name>: { outputs: deny } }` found something in it. */
  detectOutput: "detect.output",
  /** A tool's output was withheld: it could not be recorded in the state store (so later calls, on any replica, would not see it). */
  outputUnrecorded: "output-unrecorded",
  /** A wrapped function was called with positional values `wrap` cannot name (so cannot check). */
  wrapUnnamedArgs: "wrap.unnamed_args",
} as const;

/** The rule id of an approver's answer: `approval:<id>`. */
export function approvalRule(id: string): string {
  return `approval:${id}`;
}
