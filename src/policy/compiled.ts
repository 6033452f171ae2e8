import type { Finding, PolicyIssue, RiskLevel, Verdict } from "../core/index.js";
import type { ArgCheck, AsyncArgCheck, Detector } from "../analyzers/index.js";
import type { Condition, ConditionNeeds } from "./conditions.js";
import type { EngineCheck, EngineFields } from "./engines.js";
import type { GlobMatcher } from "./glob.js";
import type { LoadedPolicy, Origin } from "./load.js";
import type { RawTest } from "./schema.js";

/** One argument constraint of a declared tool, compiled. */
export interface CompiledArgCheck {
  arg: string;
  path: string[];
  kind: string;
  check: ArgCheck;
}

/** A `tools:` declaration, compiled. */
export interface CompiledTool {
  name: string;
  produces: readonly string[];
  /** Field-level labels of object outputs: path segments (`*` any) and the labels there. */
  fields: ReadonlyArray<{ path: readonly string[]; labels: readonly string[] }>;
  propagates: boolean;
  declassifies: readonly string[];
  sink?: string;
  risk?: RiskLevel;
  cost?: number;
  /** Verdict of a failed constraint on this tool. */
  onViolation: Verdict;
  /** `enforce: false`: decisions on this tool are observed, not enforced. */
  enforce: boolean;
  checks: CompiledArgCheck[];
  /** Arguments declared `required: true`: a call without one is denied (`arg.missing`). */
  required: ReadonlyArray<{ arg: string; path: readonly string[] }>;
  asyncChecks: Array<{ arg: string; path: string[]; kind: string; check: AsyncArgCheck }>;
  /** Detectors for this tool (policy-wide ones, overridden per tool). */
  detectors: DetectorUse[];
}

export interface DetectorUse {
  detector: Detector;
  /** Verdict of a hit in the arguments; `allow`: arguments are not scanned. */
  verdict: Verdict;
  /** What a hit in the tool's output does; undefined: outputs are not scanned. */
  outputs?: OutputAction;
}

/** `label`: the output gets the `secret` label; `mask`: hits are replaced; `deny`: withheld. */
export type OutputAction = "label" | "mask" | "deny";

/** A rule (or a shorthand entry), compiled. */
export interface CompiledRule {
  name: string;
  verdict: Verdict;
  /** The rule's message, or a generated one; built once here, not per call. */
  reason: string;
  when: Condition;
  /** Tool globs that narrow where the rule can match; undefined: every tool. */
  toolMatch?: GlobMatcher;
  /** A top-level argument the rule cannot match without; such rules are indexed by it. */
  requiresArg?: string;
  /** `verdict: judge`: ranks as `ask` until the policy's judge answers (in `decide`). */
  judge?: boolean;
}

/**
 * The rules that can match one tool name: those that always need testing, and those that can
 * only match when a given top-level argument is present (looked up per argument of the call).
 */
export interface RuleSet {
  always: readonly CompiledRule[];
  byArg: ReadonlyMap<string, readonly CompiledRule[]>;
}

export type LimitScope = "agent" | "session" | "tool" | "global" | `args.${string}`;

export interface CompiledLimit {
  name: string;
  verdict: Verdict;
  message?: string;
  when: Condition;
  toolMatch?: GlobMatcher;
  limit: number;
  /** 0 for a total (`max`). */
  windowMs: number;
  per: LimitScope[];
  /** `30/minute` or `max 5`, for reasons. */
  describe: string;
}

export interface CompiledBudget {
  max: number;
  askAbove?: number;
  per: "session" | "agent" | "global";
}

/** A policy compiled into plain functions and tables; the hot path reads nothing else. */
export interface CompiledPolicy extends EngineFields {
  name: string;
  hash: string;
  defaultVerdict: Verdict;
  failOpen: boolean;
  /** `mode: observe`: decisions are computed and audited, calls proceed (`enforced: false`). */
  observe: boolean;
  /** Rules and limits with `enforce: false`, by name: their contributions are audited, not enforced. */
  unenforced: ReadonlySet<string>;
  tools: ReadonlyMap<string, CompiledTool>;
  /** Policy-wide detectors, for undeclared tools. */
  detectors: DetectorUse[];
  /** Rules that can match this tool name (cached per name). */
  rulesFor(tool: string): RuleSet;
  limits: readonly CompiledLimit[];
  /** The limits a call of `tool` can match (its `tool:` globs), indexed and cached like `rulesFor`. */
  limitsFor(tool: string): readonly CompiledLimit[];
  budget?: CompiledBudget;
  /** A `tool.shadowing`/`tool.hidden_characters` finding for look-alikes of declared tools, or null. */
  shadowCheck(tool: string): Finding | null;
  needs: ConditionNeeds;
  labelMinMatch: Readonly<Record<string, number>>;
  serverLabels: Readonly<Record<string, readonly string[]>>;
  /** Tools whose outputs are trusted value sets (`from: [tool]`, `unless: ["tool:<name>"]`). */
  valueSetTools: ReadonlySet<string>;
  /** Argument paths of tools whose allowed calls are value sets (`from: ["args:<tool>.<path>"]`), by tool. */
  argValueSets: ReadonlyMap<string, readonly string[]>;
  /** What `validate` reports without refusing the policy (file:line:col). */
  warnings: readonly PolicyIssue[];
  auditArgs: "hash" | "redact" | "full";
  tests: ReadonlyArray<{ test: RawTest; origin: Origin }>;
  loaded: LoadedPolicy;
  /** Names of the `verdict: judge` rules. */
  judgeRules?: ReadonlySet<string>;
  /** The registered engines' checks (`engine: { cedar }`), asked per call; they contribute like rules. */
  engines?: readonly EngineCheck[];
  /**
   * Resolves when every analyzer the policy uses has loaded what it loads asynchronously (the
   * PostgreSQL parser). Until then such a check fails closed; see `compilePolicyFileAsync`.
   */
  ready?: () => Promise<void>;
}
