import type { CompiledRule } from "../compiled.js";
import { compileWhen } from "../conditions.js";
import type { Report } from "../conditions.js";
import { engineValue } from "../engines.js";
import { compileGlobs } from "../glob.js";
import type { GlobMatcher } from "../glob.js";
import { HOLD_WHEN_MISSING, OPERATORS } from "../vocabulary.js";
import type { CompileState } from "./state.js";
import { originOf } from "./state.js";

/** The shorthand lists (`allow: [glob]`...) as rules that match on the tool name alone. */
export function shorthandStage(state: CompileState): void {
  for (const verdict of ["allow", "flag", "ask", "deny"] as const) {
    (state.policy[verdict] ?? []).forEach((glob, i) => {
      const origin = originOf(state, state.loaded.origins.shorthand.get(verdict)?.[i], [verdict, i]);
      state.rules.push({
        name: `${verdict}:${glob}`,
        verdict,
        reason: `\`${glob}\` is on the ${verdict} list`,
        when: () => true,
        toolMatch: guardGlobs([glob], state.reporterFor(origin)),
      });
    });
  }
}

/** `rules:`: each `when` compiled to a predicate, with what the per-tool index narrows by. */
export function rulesStage(state: CompileState): void {
  const { policy, loaded } = state;
  (policy.rules ?? []).forEach((rule, i) => {
    const report = state.reporterFor(loaded.origins.rules[i]);
    state.watchFrom(loaded.origins.rules[i]);
    const judge = "judge" in rule && rule.judge === true;
    if (judge && engineValue(policy, "judge") === undefined)
      report(["verdict"], `rule \`${rule.name}\` says \`verdict: judge\` but the policy has no \`judge:\``);
    state.rules.push({
      name: rule.name,
      verdict: rule.verdict,
      judge,
      reason:
        rule.message ??
        (judge ? `rule \`${rule.name}\` needs the judge's review` : `rule \`${rule.name}\` matched`),
      when: compileWhen(rule.when, ["when"], report, state.needs),
      toolMatch: toolGlobs(rule.when),
      requiresArg: requiredArg(rule.when),
    } satisfies CompiledRule);
  });
}

/** Operators that never hold for a missing value: a rule using one needs its argument present. */
const NEEDS_VALUE: ReadonlySet<string> = new Set(OPERATORS.filter((op) => !HOLD_WHEN_MISSING.has(op)));

/**
 * The top-level argument a `when` cannot match without, if any: an `args.<x>...` key whose test
 * fails on a missing value (a scalar, or an operator such as `gt`, or `exists: true`).
 */
function requiredArg(when: Record<string, unknown> | undefined): string | undefined {
  for (const [key, spec] of Object.entries(when ?? {})) {
    if (!key.startsWith("args.") || key.length <= 5) continue;
    const needsValue =
      spec === null ||
      typeof spec !== "object" ||
      (!Array.isArray(spec) &&
        Object.entries(spec).some(
          ([op, operand]) => NEEDS_VALUE.has(op) || (op === "exists" && operand === true),
        ));
    if (needsValue) return key.slice(5).split(".")[0];
  }
  return undefined;
}

/**
 * A `tool:` key at the top of a `when` narrows the index; nested ones are plain tests. A bad glob
 * is reported where the condition compiler meets it, so not here.
 */
export function toolGlobs(when: Record<string, unknown> | undefined): GlobMatcher | undefined {
  const tool = when?.tool;
  if (typeof tool === "string") return guardGlobs([tool], () => {});
  if (Array.isArray(tool) && tool.length && tool.every((t) => typeof t === "string"))
    return guardGlobs(tool, () => {});
  return undefined;
}

function guardGlobs(globs: string[], report: Report): GlobMatcher {
  try {
    return compileGlobs(globs);
  } catch (error) {
    report([], `bad glob: ${(error as Error).message}`);
    return () => false;
  }
}
