import type { Decision, Finding, Verdict } from "../core/index.js";
import { SEVERITY } from "../core/index.js";

export { approvalRule, BUILTIN_RULES } from "../core/rules.js";

/**
 * One contributor to a decision: a rule, a finding, a limit, the budget, a plan or scope, the
 * judge, an approver. Every stage of the gateway adds its contributions through this module, so
 * who wins and the order of `matched` are decided in one place.
 */
export interface Contribution {
  verdict: Verdict;
  rule: string;
  reason: string;
  /** A `verdict: judge` rule: ranks as `ask`, after any plain `ask`, so the judge decides only when nothing else asks. */
  judge?: boolean;
  /** Answered by a later stage (the judge, an approver): still listed in `matched`, never decides. */
  overruled?: boolean;
}

/**
 * Whether `a` ranks before `b`: overruled contributions last; then most severe first; among
 * equals a plain rule before a judge rule, then the smaller name, so file order never changes
 * which rule is named.
 */
export function outranks(a: Contribution, b: Contribution): boolean {
  if (!a.overruled !== !b.overruled) return !a.overruled;
  const diff = SEVERITY[a.verdict] - SEVERITY[b.verdict];
  return diff > 0 || (diff === 0 && (!a.judge === !b.judge ? a.rule < b.rule : !a.judge));
}

/** A comparator for `outranks`: sorting with it puts the deciding contribution first. */
export function byRank(a: Contribution, b: Contribution): number {
  return outranks(a, b) ? -1 : outranks(b, a) ? 1 : 0;
}

/** What each decision the gateway made holds behind `matched` (names alone lose the verdicts). */
const behind = new WeakMap<Decision, readonly Contribution[]>();

/** Remembers the contributions behind a decision, ranked; `matched` is their names. */
export function remember<D extends Decision>(decision: D, ranked: readonly Contribution[]): D {
  behind.set(decision, ranked);
  return decision;
}

/**
 * The contributions behind a decision, ranked. A decision the gateway did not make (built by a
 * host or a test) is read back from its `rule`, `findings` and `matched`; names it cannot place
 * rank as `allow`, after the ones it can.
 */
export function contributionsOf(decision: Decision): readonly Contribution[] {
  const known = behind.get(decision);
  if (known) return known;
  if (decision.rule === null) return [];
  const names = decision.matched ?? [decision.rule];
  return names.map((rule) => {
    if (rule === decision.rule) return { verdict: decision.verdict, rule, reason: decision.reason };
    const finding = decision.findings.find((f) => f.code === rule);
    return { verdict: finding ? (finding.verdict ?? "deny") : "allow", rule, reason: finding?.message ?? "" };
  });
}

/** A copy of the decision with other fields (`approval`, say), keeping the contributions behind it. */
export function amend(decision: Decision, fields: Partial<Decision>): Decision {
  const known = behind.get(decision);
  const next = { ...decision, ...fields };
  if (known) behind.set(next, known);
  return next;
}

/** The decision with these contributions ranked in: the first decides, `matched` lists them all. */
export function rankInto<D extends Decision>(decision: D, contributions: readonly Contribution[]): D {
  const ranked = [...contributions].sort(byRank);
  const [first] = ranked;
  if (!first) return decision;
  const next: D = { ...decision, verdict: first.verdict, rule: first.rule, reason: first.reason };
  if (ranked.length > 1) next.matched = ranked.map((c) => c.rule);
  else delete next.matched;
  return remember(next, ranked);
}

/**
 * Adds one contribution (and the finding behind it, if any) to a decision. A decision that fell
 * to `default` has no contributions, so the new one decides whatever its verdict.
 */
export function contribute(decision: Decision, contribution: Contribution, finding?: Finding): Decision {
  const base = finding ? { ...decision, findings: [...decision.findings, finding] } : decision;
  return rankInto(base, [...contributionsOf(decision), contribution]);
}

/**
 * A later stage answers the decision (an approver allows a call that asked): `by` decides
 * whatever its verdict, and what it answered stays listed after it. Later contributions (a
 * limit that trips after the approval) still rank against `by`.
 */
export function overrule(decision: Decision, by: Contribution): Decision {
  const answered = contributionsOf(decision).map((c) => ({ ...c, overruled: true }));
  return rankInto(decision, [by, ...answered]);
}
