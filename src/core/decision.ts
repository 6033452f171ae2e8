import type { Verdict } from "./verdict.js";

/** A failed constraint or detector, e.g. `url.private` on argument `url`. */
export interface Finding {
  code: string;
  message: string;
  /** Dotted path of the argument the finding is about, when there is one. */
  arg?: string;
  /** Verdict this finding contributes (deny unless the tool says `on_violation: ask`). */
  verdict?: Verdict;
}

/** Where a label in the arguments came from. */
export interface FlowEvidence {
  label: string;
  /** Argument path that carried the label. */
  arg: string;
  /** The earlier call (tool and sequence number) whose output held the content, or "input"/"host". */
  source: string;
}

/** The answer for one call. */
export interface Decision {
  verdict: Verdict;
  /** The rule (or constraint, limit, `default`) that decided; null only when nothing matched and default applied. */
  rule: string | null;
  reason: string;
  findings: Finding[];
  /** Labels that flowed into this call's arguments. */
  labels: string[];
  /** Every rule, limit or check that contributed, most severe first. */
  matched?: string[];
  flows?: FlowEvidence[];
  tool?: string;
  /** Id of the pending approval when the verdict is `ask` and an approval store is attached. */
  approval?: string;
  /**
   * `false`: the policy observes this verdict rather than enforcing it (`mode: observe`, or
   * `enforce: false` on the deciding rule, tool or limit). The verdict is what enforcing would
   * have given; the call proceeds. Absent when the verdict is enforced.
   */
  enforced?: false;
  /** Rules or limits with `enforce: false` that matched but were overridden by enforced ones. */
  observed?: string[];
}

/**
 * Whether the call may run: allowed, flagged, or a verdict the policy only observes. Every entry
 * point (wrap, enforce, adapters, MCP proxy and gateway, server) asks this one function.
 */
export function mayRun(decision: Pick<Decision, "verdict" | "enforced">): boolean {
  return decision.verdict === "allow" || decision.verdict === "flag" || decision.enforced === false;
}
