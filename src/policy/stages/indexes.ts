import type { Finding } from "../../core/index.js";
import { compileShadowCheck } from "../../analyzers/index.js";
import type { CompiledLimit, CompiledRule, RuleSet } from "../compiled.js";
import type { CompileState } from "./state.js";

const RULE_CACHE_LIMIT = 10_000;

/** `from: ["args:<tool>.<path>"]` sources, by tool: the argument paths whose allowed values the session keeps. */
export function valueSetsStage(state: CompileState): void {
  for (const source of state.needs.valueSets) {
    const m = /^args:([^.]+)\.(.+)$/.exec(source);
    if (m) state.argValueSets.set(m[1], [...(state.argValueSets.get(m[1]) ?? []), m[2]]);
  }
}

/**
 * The per-tool lookups of the hot path, each cached by tool name (bounded): the rules that can
 * match a tool (indexed by the argument they need), its limits, and its look-alike check.
 */
export function indexesStage(state: CompileState): void {
  const { rules, limits } = state;
  const shadowCheck = compileShadowCheck([...state.tools.keys()]);
  const ruleCache = new Map<string, RuleSet>();
  const limitCache = new Map<string, readonly CompiledLimit[]>();
  const shadowCache = new Map<string, Finding | null>();
  state.index = {
    rulesFor: (tool) => {
      let found = ruleCache.get(tool);
      if (found) return found;
      const always: CompiledRule[] = [];
      const byArg = new Map<string, CompiledRule[]>();
      for (const rule of rules) {
        if (rule.toolMatch && !rule.toolMatch(tool)) continue;
        if (rule.requiresArg === undefined) always.push(rule);
        else byArg.set(rule.requiresArg, [...(byArg.get(rule.requiresArg) ?? []), rule]);
      }
      found = { always, byArg };
      if (ruleCache.size < RULE_CACHE_LIMIT) ruleCache.set(tool, found);
      return found;
    },
    limitsFor: (tool) => {
      let found = limitCache.get(tool);
      if (found) return found;
      found = limits.filter((limit) => !limit.toolMatch || limit.toolMatch(tool));
      if (limitCache.size < RULE_CACHE_LIMIT) limitCache.set(tool, found);
      return found;
    },
    shadowCheck: (tool) => {
      let found = shadowCache.get(tool);
      if (found === undefined) {
        found = shadowCheck(tool);
        if (shadowCache.size < RULE_CACHE_LIMIT) shadowCache.set(tool, found);
      }
      return found;
    },
  };
}
