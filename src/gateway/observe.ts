import type { Call, Decision } from "../core/index.js";
import { BUILTIN_RULES } from "../core/rules.js";
import type { CompiledPolicy } from "../policy/index.js";
import { amend, contributionsOf, rankInto } from "./combine.js";

/**
 * Verdicts that guard the monitor itself, not the policy's judgement: a call that cannot be read,
 * an engine failure under `fail: closed`, an audit trail that cannot record. Observing never lifts them.
 */
const ALWAYS_ENFORCED = new Set<string>([
  BUILTIN_RULES.malformedCall,
  BUILTIN_RULES.internalError,
  BUILTIN_RULES.auditBacklog,
  BUILTIN_RULES.auditUnavailable,
]);

/**
 * The last stage of a decision: what the policy only observes. Under `mode: observe`, or for a
 * tool with `enforce: false`, a verdict that would stop the call keeps its verdict, rule, reason,
 * findings and flows and gets `enforced: false`: the call proceeds. A rule or limit with
 * `enforce: false` is set aside: when what is left lets the call run, the decision keeps the
 * would-be verdict with `enforced: false`; when an enforced contribution still stops the call,
 * that one decides and the observed ones are listed in `observed`.
 *
 * Limits and budgets count as if enforced: a call that enforcing would stop is not counted, so
 * the counters show what enforcement would have seen. Runs last, so every earlier stage
 * (analyzers, rules, limits, judge) contributed first.
 */
export function observeStage(
  policy: CompiledPolicy,
  call: Call,
  decision: Decision,
  observeAll = false,
): Decision {
  if (decision.enforced === false || decision.verdict === "allow" || decision.verdict === "flag")
    return decision;
  if (decision.rule !== null && ALWAYS_ENFORCED.has(decision.rule)) return decision;
  if (observeAll || policy.observe || policy.tools.get(call.tool)?.enforce === false)
    return amend(decision, { enforced: false });
  if (policy.unenforced.size === 0) return decision;
  const all = contributionsOf(decision).filter((c) => !c.overruled);
  const observed = all.filter((c) => policy.unenforced.has(c.rule) && c.verdict !== "allow");
  if (observed.length === 0) return decision;
  const enforced = all.filter((c) => !observed.includes(c));
  const names = observed.map((c) => c.rule);
  // What enforcing the rest would decide: the best of them, or the default when none is left.
  const rest = enforced[0]?.verdict ?? policy.defaultVerdict;
  if (rest === "allow" || rest === "flag") return amend(decision, { enforced: false, observed: names });
  if (enforced.length === 0) return amend(decision, { observed: names });
  return amend(rankInto({ ...decision }, enforced), { observed: names });
}

/** Whether the stage would let this decision proceed unenforced (so no approval is opened for it). */
export function observes(
  policy: CompiledPolicy,
  call: Call,
  decision: Decision,
  observeAll = false,
): boolean {
  return observeStage(policy, call, decision, observeAll).enforced === false;
}
