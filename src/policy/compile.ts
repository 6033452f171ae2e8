import type { CompiledPolicy } from "./compiled.js";
import { activeDetectors, detectorsStage } from "./stages/detectors.js";
import { checkStage } from "./stages/check.js";
import { enginesStage } from "./stages/engines.js";
import { indexesStage, valueSetsStage } from "./stages/indexes.js";
import { limitsStage } from "./stages/limits.js";
import { rulesStage, shorthandStage } from "./stages/rules.js";
import { compileState } from "./stages/state.js";
import type { CompileState } from "./stages/state.js";
import { toolsStage } from "./stages/tools.js";
import { warningsStage } from "./stages/warnings.js";
import type { LoadedPolicy } from "./load.js";

/** One step of `compilePolicy`: reads the loaded policy and what earlier stages built, adds its part. */
export interface CompileStage {
  name: string;
  /** Why it runs where it does. */
  why: string;
  run(state: CompileState): void;
}

/**
 * The stages of `compilePolicy`, in order, each with the reason for its place (as OPA lists its
 * compiler stages). Every stage before `check` reports problems instead of throwing, so one run
 * shows them all; every stage after it sees a policy that loads.
 */
export const COMPILE_STAGES: readonly CompileStage[] = [
  {
    name: "detectors",
    why: "first: each tool's own `detect` overrides the policy-wide entries, so those must exist",
    run: detectorsStage,
  },
  {
    name: "tools",
    why: "after detectors, whose entries a tool's own `detect` merges over; rules and limits never read it",
    run: toolsStage,
  },
  {
    name: "shorthand",
    why: "before `rules:`: the index lists rules in this order (ties are broken by name, so it decides nothing)",
    run: shorthandStage,
  },
  {
    name: "rules",
    why: "compiles each `when`, recording what the gateway must compute (`needs`) and the `from` sources",
    run: rulesStage,
  },
  {
    name: "limits",
    why: "after rules: limit conditions feed the same `needs` and `from` sources",
    run: limitsStage,
  },
  {
    name: "engines",
    why: "after the policy's own parts, before `check`: an engine's problems are thrown with the rest",
    run: enginesStage,
  },
  {
    name: "check",
    why: "every problem above is thrown together, sorted by position; nothing after it may fail",
    run: checkStage,
  },
  {
    name: "warnings",
    why: "after `check`: only a policy that loads gets warnings; needs the `from` sources rules and limits named",
    run: warningsStage,
  },
  {
    name: "value-sets",
    why: "after every condition is compiled: `needs.valueSets` is complete",
    run: valueSetsStage,
  },
  {
    name: "indexes",
    why: "last: the per-tool lookups read the finished rule, limit and tool lists",
    run: indexesStage,
  },
];

/** Compiles a loaded policy once. Throws `PolicyLoadError` naming file:line:col for every problem. */
export function compilePolicy(loaded: LoadedPolicy): CompiledPolicy {
  const state = compileState(loaded);
  for (const stage of COMPILE_STAGES) stage.run(state);
  return assemble(state);
}

/** The compiled policy: the stages' results, and the plain settings read as they are. */
function assemble(state: CompileState): CompiledPolicy {
  const { policy, loaded, rules, needs } = state;
  const ready = Promise.all(state.loads).then(() => undefined);
  return {
    ready: () => ready,
    name: policy.name ?? loaded.source.file,
    hash: loaded.hash,
    defaultVerdict: policy.default ?? "deny",
    failOpen: policy.fail === "open",
    observe: policy.mode === "observe",
    unenforced: new Set([
      ...(policy.rules ?? []).filter((rule) => rule.enforce === false).map((rule) => rule.name),
      ...(policy.limits ?? []).filter((limit) => limit.enforce === false).map((limit) => limit.name),
    ]),
    tools: state.tools,
    detectors: activeDetectors(state.detectors),
    rulesFor: state.index!.rulesFor,
    limits: state.limits,
    limitsFor: state.index!.limitsFor,
    budget: policy.budget && {
      max: policy.budget.max,
      askAbove: policy.budget.ask_above,
      per: policy.budget.per ?? "session",
    },
    shadowCheck: state.index!.shadowCheck,
    needs,
    labelMinMatch: Object.fromEntries(
      Object.entries(policy.labels ?? {}).flatMap(([label, spec]) =>
        spec.min_match ? [[label, spec.min_match]] : [],
      ),
    ),
    valueSetTools: needs.valueSets,
    argValueSets: state.argValueSets,
    warnings: state.warnings,
    serverLabels: Object.fromEntries(
      Object.entries(policy.servers ?? {}).map(([id, spec]) => [id, spec.produces ?? []]),
    ),
    auditArgs: policy.audit?.args ?? "hash",
    tests: (policy.tests ?? []).map((test, i) => ({ test, origin: loaded.origins.tests[i] })),
    loaded,
    ...state.engineFields,
    judgeRules: new Set(rules.filter((rule) => rule.judge).map((rule) => rule.name)),
    engines: state.engines,
  };
}
