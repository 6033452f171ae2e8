import type { Decision, Finding, Verdict } from "../core/index.js";
import { SEVERITY } from "../core/index.js";
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
 * `flag` rule, say) still counts, so the result is the more severe of the two.
 */
export function applyJudgement(
  policy: CompiledPolicy,
  decision: Decision,
  judgement: Judgement,
): JudgedDecision {
  const asked = decision.rule ?? JUDGE_UNDECIDED;
  const { reason, finding } = describe(judgement);
  const findings = finding ? [...decision.findings, finding] : decision.findings;
  const matched = ["judge", ...(decision.matched ?? [asked])];
  const judged: JudgedDecision = {
    ...decision,
    verdict: judgement.verdict,
    rule: "judge",
    reason,
    findings,
    matched,
    judge: judgement,
  };
  const other = residual(policy, decision);
  if (other && SEVERITY[other.verdict] > SEVERITY[judgement.verdict]) {
    return { ...judged, verdict: other.verdict, rule: other.rule, reason: other.reason };
  }
  return judged;
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

/** The most severe contribution other than judge rules, looked up by name among the tool's rules and the findings. */
function residual(
  policy: CompiledPolicy,
  decision: Decision,
): { verdict: Verdict; rule: string; reason: string } | undefined {
  const names = decision.matched ?? [];
  if (names.length < 2 || !decision.tool) return undefined;
  const set = policy.rulesFor(decision.tool);
  const rules = [...set.always, ...[...set.byArg.values()].flat()];
  let best: { verdict: Verdict; rule: string; reason: string } | undefined;
  for (const name of names) {
    if (name === decision.rule || policy.judgeRules?.has(name)) continue;
    const finding = decision.findings.find((f) => f.code === name);
    const rule = rules.find((r) => r.name === name);
    const found = finding
      ? { verdict: finding.verdict ?? "deny", rule: name, reason: finding.message }
      : rule
        ? { verdict: rule.verdict, rule: name, reason: rule.reason }
        : undefined;
    if (found && (!best || SEVERITY[found.verdict] > SEVERITY[best.verdict])) best = found;
  }
  return best;
}
