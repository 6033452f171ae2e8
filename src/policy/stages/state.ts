import type { PolicyIssue } from "../../core/index.js";
import type { CompiledLimit, CompiledPolicy, CompiledRule, CompiledTool, DetectorUse } from "../compiled.js";
import type { ConditionNeeds, Report } from "../conditions.js";
import type { EngineCheck, EngineFields } from "../engines.js";
import type { LoadedPolicy, Origin } from "../load.js";
import type { RawPolicy } from "../schema.js";
import { issueAtPath } from "../source.js";
import type { PathSegment } from "../source.js";

/** A `from` source where a condition names it (for the provenance warnings). */
export interface FromSite {
  source: string;
  origin: Origin;
  at: PathSegment[];
}

/** What the compile stages share: the loaded policy, the problems found, and the parts built so far. */
export interface CompileState {
  loaded: LoadedPolicy;
  policy: RawPolicy;
  /** Every problem; thrown together by the `check` stage. */
  issues: PolicyIssue[];
  /** What `validate` reports without refusing the policy. */
  warnings: PolicyIssue[];
  /** Reports an issue at a path under `origin`. */
  reporterFor(origin: Origin): Report;
  /** Conditions compiled from now on tell their `from` sources to `fromSites`, as written at `origin`. */
  watchFrom(origin: Origin): void;
  needs: ConditionNeeds;
  fromSites: FromSite[];
  /** What analyzers load asynchronously (the PostgreSQL parser). */
  loads: Promise<void>[];
  /** Policy-wide `detect`, before filtering out what is switched off. */
  detectors: DetectorUse[];
  tools: Map<string, CompiledTool>;
  rules: CompiledRule[];
  limits: CompiledLimit[];
  engines: EngineCheck[];
  engineFields: EngineFields;
  argValueSets: Map<string, string[]>;
  /** The per-tool lookups the hot path uses; set by the `indexes` stage. */
  index?: Pick<CompiledPolicy, "rulesFor" | "limitsFor" | "shadowCheck">;
}

export function compileState(loaded: LoadedPolicy): CompileState {
  // Problems the loader stepped past come first; everything is thrown together by `check`.
  const issues: PolicyIssue[] = [...(loaded.issues ?? [])];
  const needs: ConditionNeeds = { flows: false, seen: false, findings: false, valueSets: new Set() };
  const fromSites: FromSite[] = [];
  return {
    loaded,
    policy: loaded.policy,
    issues,
    warnings: [],
    reporterFor: (origin) => (path, message, help, atKey) =>
      issues.push(issueAtPath(origin.source, [...origin.path, ...path], message, { help, atKey })),
    watchFrom: (origin) => {
      needs.onFrom = (source, at) => fromSites.push({ source, origin, at });
    },
    needs,
    fromSites,
    loads: [],
    detectors: [],
    tools: new Map(),
    rules: [],
    limits: [],
    engines: [],
    engineFields: {},
    argValueSets: new Map(),
  };
}

/** The origin of a named part, or its place in the root file when the loader did not record one. */
export function originOf(state: CompileState, known: Origin | undefined, path: PathSegment[]): Origin {
  return known ?? { source: state.loaded.source, path };
}
