import type { Decision, Finding } from "../core/index.js";
import { BUILTIN_RULES, contributionsOf, rankInto } from "../gateway/combine.js";
import type { Contribution } from "../gateway/combine.js";
import type { CompiledPolicy } from "../policy/index.js";
import type { Judgement } from "./judge.js";
import { JUDGE_UNDECIDED } from "./schema.js";

/** A Decision that went to the judge: `judge` holds its answer (and goes into the audit record). */
export type JudgedDecision = Decision & { judge?: Judgement };

/**
 * Whether the decision waits on the judge: its verdict is `ask` and the contribution that won is a
 * `verdict: judge` rule (or `for: undecided` stood in for the default). The engine names a plain
 * `ask` before a judge rule of the same rank, so a judge rule winning means nothing else asks.
 */
export function needsJudge(policy: CompiledPolicy, decision: Decision): boolean {
  if (!policy.judge || decision.verdict !== "ask" || decision.rule === null) return false;
  return decision.rule === JUDGE_UNDECIDED || (policy.judgeRules?.has(decision.rule) ?? false);
}

/**
 * Replaces the judge rule's `ask` with the judgement's verdict; whatever else contributed (a
 * `flag` rule, say) still counts, so the result is the more severe of the two. The judge rules
 * stay listed in `matched`, overruled by the judgement.
 */
export function applyJudgement(
  policy: CompiledPolicy,
  decision: Decision,
  judgement: Judgement,
): JudgedDecision {
  const { reason, finding } = describe(judgement);
  const findings = finding ? [...decision.findings, finding] : decision.findings;
  const asked = (c: Contribution) =>
    c.judge || c.rule === JUDGE_UNDECIDED || (policy.judgeRules?.has(c.rule) ?? false);
  const contributions = contributionsOf(decision).map((c) => (asked(c) ? { ...c, overruled: true } : c));
  const judged: JudgedDecision = { ...decision, findings, judge: judgement };
  return rankInto(judged, [
    ...contributions,
    { verdict: judgement.verdict, rule: BUILTIN_RULES.judge, reason },
  ]);
}

function describe(j: Judgement): { reason: string; finding?: Finding } {
  const who = `the judge (${j.provider} \`${j.model}\`)`;
  const sure = j.confidence === undefined ? "" : ` (confidence ${j.confidence})`;
  const why = j.reasoning ? `: ${j.reasoning}` : "";
  switch (j.outcome) {
    case "consistent":
      return { reason: `${who} found the call consistent with the task${sure}${why}` };
    case "inconsistent": {
      const message = `${who} found the call inconsistent with the task${sure}${why}`;
      return { reason: message, finding: { code: "judge.inconsistent", message, verdict: "deny" } };
    }
    case "unsure": {
      const message = `${who} is not sure enough${sure}${why}; fallback: ${j.verdict}`;
      return { reason: message, finding: { code: "judge.unsure", message, verdict: j.verdict } };
    }
    default: {
      const message = `${who} gave no usable answer (${j.outcome}: ${j.error}); fallback: ${j.verdict}`;
      return { reason: message, finding: { code: `judge.${j.outcome}`, message, verdict: j.verdict } };
    }
  }
}
