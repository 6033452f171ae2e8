import { dirname } from "node:path";
import { PolicyLoadError } from "../core/index.js";
import type { Finding, PolicyIssue, RiskLevel, Verdict } from "../core/index.js";
import { CONSTRAINT_KINDS, compileShadowCheck, DETECTORS } from "../analyzers/index.js";
import type { ArgCheck, AsyncArgCheck, Detector } from "../analyzers/index.js";
import { compileWhen } from "./conditions.js";
import type { Condition, ConditionNeeds, Report } from "./conditions.js";
import type { EvalContext } from "./context.js";
import { engineValue, POLICY_ENGINES } from "./engines.js";
import type { EngineCheck, EngineFields } from "./engines.js";
import { compileGlobs } from "./glob.js";
import type { GlobMatcher } from "./glob.js";
import type { LoadedPolicy, Origin } from "./load.js";
import type { RawTest } from "./schema.js";
import type { DetectEntry } from "./schema.js";
import { didYouMean, issueAtPath } from "./source.js";
import type { PolicySource } from "./source.js";
import type { PathSegment } from "./source.js";

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

const RULE_CACHE_LIMIT = 10_000;
const UNITS: Record<string, number> = {
  s: 1e3,
  sec: 1e3,
  second: 1e3,
  m: 6e4,
  min: 6e4,
  minute: 6e4,
  h: 36e5,
  hour: 36e5,
  d: 864e5,
  day: 864e5,
};

/** Compiles a loaded policy once. Throws `PolicyLoadError` naming file:line:col for every problem. */
export function compilePolicy(loaded: LoadedPolicy): CompiledPolicy {
  const { policy, origins } = loaded;
  // Problems the loader stepped past come first; everything is thrown together below.
  const issues: PolicyIssue[] = [...(loaded.issues ?? [])];
  const reporterFor =
    (origin: Origin): Report =>
    (path, message, help, atKey) =>
      issues.push(issueAtPath(origin.source, [...origin.path, ...path], message, { help, atKey }));
  const rootReport = reporterFor({ source: loaded.source, path: [] });
  const needs: ConditionNeeds = { flows: false, seen: false, findings: false, valueSets: new Set() };
  const loads: Promise<void>[] = [];
  const warnings: PolicyIssue[] = [];
  const fromSites: Array<{ source: string; origin: Origin; at: PathSegment[] }> = [];
  const watchFrom = (origin: Origin) => {
    needs.onFrom = (source, at) => fromSites.push({ source, origin, at });
  };

  const policyDetectors = compileDetectors(policy.detect ?? {}, (name, path, message, help) => {
    const origin = origins.detect.get(name) ?? { source: loaded.source, path: ["detect", name] };
    issues.push(
      issueAtPath(origin.source, [...origin.path, ...path], message, { help, atKey: path.length === 0 }),
    );
  });

  const tools = new Map<string, CompiledTool>();
  for (const [name, decl] of Object.entries(policy.tools ?? {})) {
    const report = reporterFor(origins.tools.get(name) ?? { source: loaded.source, path: ["tools", name] });
    const checks: CompiledArgCheck[] = [];
    const asyncChecks: CompiledTool["asyncChecks"] = [];
    const required: Array<{ arg: string; path: string[] }> = [];
    for (const [arg, constraints] of Object.entries(decl.args ?? {})) {
      if (constraints === null || typeof constraints !== "object" || Array.isArray(constraints)) {
        report(["args", arg], "expected a mapping of constraint kinds, e.g. `{ url: { private: block } }`");
        continue;
      }
      for (const [kind, options] of Object.entries(constraints as Record<string, unknown>)) {
        const at: PathSegment[] = ["args", arg, kind];
        if (kind === "required") {
          if (typeof options !== "boolean") report(at, "`required` must be `true` or `false`");
          else if (options) required.push({ arg, path: arg.split(".") });
          continue;
        }
        const constraint = CONSTRAINT_KINDS.get(kind);
        if (!constraint) {
          const guess = didYouMean(kind, CONSTRAINT_KINDS.keys());
          report(
            at,
            `unknown constraint kind \`${kind}\``,
            guess ? `did you mean \`${guess}\`?` : `kinds: ${[...CONSTRAINT_KINDS.keys()].join(", ")}`,
            true,
          );
          continue;
        }
        const parsed = constraint.options.safeParse(options);
        if (!parsed.success) {
          for (const issue of parsed.error.issues) {
            const sub = issue.path.filter((p): p is PathSegment => typeof p !== "symbol");
            const keys = issue.code === "unrecognized_keys" ? issue.keys : [];
            if (keys.length)
              for (const key of keys) {
                const known = optionKeys(constraint.options, sub);
                const guess = didYouMean(key, known);
                report(
                  [...at, ...sub, key],
                  `unknown \`${kind}\` option \`${key}\``,
                  guess
                    ? `did you mean \`${guess}\`?`
                    : known.length
                      ? `options: ${known.join(", ")}`
                      : undefined,
                  true,
                );
              }
            else
              report(
                [...at, ...sub],
                `\`${kind}\`: ${issue.message.replace(/^Invalid input: /, "").toLowerCase()}`,
              );
          }
          continue;
        }
        const path = arg.split(".");
        try {
          checks.push({ arg, path, kind, check: constraint.compile(parsed.data) });
          const loading = constraint.load?.(parsed.data);
          if (loading) loads.push(loading);
          const asyncCheck = constraint.compileAsync?.(parsed.data);
          if (asyncCheck) asyncChecks.push({ arg, path, kind, check: asyncCheck });
        } catch (error) {
          report(at, `\`${kind}\`: ${(error as Error).message}`);
        }
      }
    }
    const detectors = decl.detect
      ? mergeDetectors(
          policyDetectors,
          compileDetectors(decl.detect, (det, path, message, help) =>
            report(["detect", det, ...path], message, help),
          ),
        )
      : policyDetectors.filter((use) => use.verdict !== "allow" || use.outputs !== undefined);
    tools.set(name, {
      name,
      produces: decl.produces ?? [],
      fields: Object.entries(decl.fields ?? {})
        .map(([path, labels]) => ({ path: path.split("."), labels }))
        // Most specific first: longer paths, then fewer wildcards.
        .sort((a, b) => b.path.length - a.path.length || wildcards(a.path) - wildcards(b.path)),
      propagates: decl.propagates ?? false,
      declassifies: decl.declassifies ?? [],
      sink: decl.sink,
      risk: decl.risk,
      cost: decl.cost,
      onViolation: decl.on_violation ?? "deny",
      enforce: decl.enforce !== false,
      checks,
      required,
      asyncChecks,
      detectors,
    });
  }

  const rules: CompiledRule[] = [];
  for (const verdict of ["allow", "flag", "ask", "deny"] as const) {
    (policy[verdict] ?? []).forEach((glob, i) => {
      const origin = origins.shorthand.get(verdict)?.[i] ?? { source: loaded.source, path: [verdict, i] };
      const toolMatch = guardGlobs([glob], reporterFor(origin));
      const name = `${verdict}:${glob}`;
      rules.push({
        name,
        verdict,
        reason: `\`${glob}\` is on the ${verdict} list`,
        when: () => true,
        toolMatch,
      });
    });
  }
  (policy.rules ?? []).forEach((rule, i) => {
    const report = reporterFor(origins.rules[i]);
    watchFrom(origins.rules[i]);
    const judge = "judge" in rule && rule.judge === true;
    if (judge && engineValue(policy, "judge") === undefined)
      report(["verdict"], `rule \`${rule.name}\` says \`verdict: judge\` but the policy has no \`judge:\``);
    rules.push({
      name: rule.name,
      verdict: rule.verdict,
      judge,
      reason:
        rule.message ??
        (judge ? `rule \`${rule.name}\` needs the judge's review` : `rule \`${rule.name}\` matched`),
      when: compileWhen(rule.when, ["when"], report, needs),
      toolMatch: toolGlobs(rule.when, report),
      requiresArg: requiredArg(rule.when),
    });
  });

  const limits: CompiledLimit[] = (policy.limits ?? []).map((limit, i) => {
    const report = reporterFor(origins.limits[i]);
    watchFrom(origins.limits[i]);
    const per = (typeof limit.per === "string" ? [limit.per] : (limit.per ?? ["global"])) as LimitScope[];
    per.forEach((scope, j) => {
      if (!["agent", "session", "tool", "global"].includes(scope) && !/^args\.[^.]/.test(scope)) {
        report(
          typeof limit.per === "string" ? ["per"] : ["per", j],
          `unknown scope \`${scope}\``,
          "expected agent, session, tool, global or args.<path>",
        );
      }
    });
    let windowMs = 0;
    let max = limit.max ?? 0;
    if (limit.rate) {
      const [, count, n, unit] = /^(\d+)\s*\/\s*(\d+)?\s*([a-z]+?)s?$/.exec(limit.rate.trim()) ?? [];
      max = Number(count);
      windowMs = (Number(n) || 1) * (UNITS[unit] ?? UNITS[`${unit}s`] ?? 0);
      if (!windowMs || max < 1) report(["rate"], `bad rate \`${limit.rate}\``);
    }
    return {
      name: limit.name,
      verdict: limit.verdict ?? "deny",
      message: limit.message,
      when: compileWhen(limit.when, ["when"], report, needs),
      toolMatch: toolGlobs(limit.when, report),
      limit: max,
      windowMs,
      per,
      describe: limit.rate ? `${limit.rate} per ${per.join("+")}` : `${max} per ${per.join("+")}`,
    };
  });

  const shadowCheck = compileShadowCheck([...tools.keys()]);
  const engines: EngineCheck[] = [];
  const engineFields: EngineFields = {};
  for (const engine of POLICY_ENGINES.values()) {
    const raw = engineValue(policy, engine.key);
    if (raw === undefined) continue;
    const top = engine.key.split(".")[0];
    const source = sourceOf(loaded, top, engineValue(policy, top));
    const compiled = engine.compile(raw, {
      source,
      baseDir: source.file.startsWith("<") ? process.cwd() : dirname(source.file),
      failOpen: policy.fail === "open",
      issue: (path, message) => issueAtPath(source, [...engine.key.split("."), ...path], message),
    });
    issues.push(...(compiled.issues ?? []));
    if (compiled.check) engines.push(compiled.check);
    Object.assign(engineFields, compiled.fields);
  }
  needs.onFrom = undefined;
  if (issues.length) {
    issues.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col);
    throw new PolicyLoadError(issues);
  }
  warnings.push(...provenanceWarnings(policy, origins, loaded, fromSites));
  const argValueSets = new Map<string, string[]>();
  for (const source of needs.valueSets) {
    const m = /^args:([^.]+)\.(.+)$/.exec(source);
    if (m) argValueSets.set(m[1], [...(argValueSets.get(m[1]) ?? []), m[2]]);
  }

  const cache = new Map<string, RuleSet>();
  const rulesFor = (tool: string): RuleSet => {
    let found = cache.get(tool);
    if (found) return found;
    const always: CompiledRule[] = [];
    const byArg = new Map<string, CompiledRule[]>();
    for (const rule of rules) {
      if (rule.toolMatch && !rule.toolMatch(tool)) continue;
      if (rule.requiresArg === undefined) always.push(rule);
      else byArg.set(rule.requiresArg, [...(byArg.get(rule.requiresArg) ?? []), rule]);
    }
    found = { always, byArg };
    if (cache.size < RULE_CACHE_LIMIT) cache.set(tool, found);
    return found;
  };
  const limitCache = new Map<string, readonly CompiledLimit[]>();
  const limitsFor = (tool: string): readonly CompiledLimit[] => {
    let found = limitCache.get(tool);
    if (found) return found;
    found = limits.filter((limit) => !limit.toolMatch || limit.toolMatch(tool));
    if (limitCache.size < RULE_CACHE_LIMIT) limitCache.set(tool, found);
    return found;
  };
  const shadowCache = new Map<string, Finding | null>();
  const cachedShadowCheck = (tool: string): Finding | null => {
    let found = shadowCache.get(tool);
    if (found === undefined) {
      found = shadowCheck(tool);
      if (shadowCache.size < RULE_CACHE_LIMIT) shadowCache.set(tool, found);
    }
    return found;
  };
  void rootReport;

  const ready = Promise.all(loads).then(() => undefined);
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
    tools,
    detectors: policyDetectors.filter((use) => use.verdict !== "allow" || use.outputs !== undefined),
    rulesFor,
    limits,
    limitsFor,
    budget: policy.budget && {
      max: policy.budget.max,
      askAbove: policy.budget.ask_above,
      per: policy.budget.per ?? "session",
    },
    shadowCheck: cachedShadowCheck,
    needs,
    labelMinMatch: Object.fromEntries(
      Object.entries(policy.labels ?? {}).flatMap(([label, spec]) =>
        spec.min_match ? [[label, spec.min_match]] : [],
      ),
    ),
    valueSetTools: needs.valueSets,
    argValueSets,
    warnings,
    serverLabels: Object.fromEntries(
      Object.entries(policy.servers ?? {}).map(([id, spec]) => [id, spec.produces ?? []]),
    ),
    auditArgs: policy.audit?.args ?? "hash",
    tests: (policy.tests ?? []).map((test, i) => ({ test, origin: origins.tests[i] })),
    loaded,
    ...engineFields,
    judgeRules: new Set(rules.filter((rule) => rule.judge).map((rule) => rule.name)),
    engines,
  };
}

/** The keys an options schema accepts at `path` (for "did you mean"); none when it is not an object. */
function optionKeys(schema: unknown, path: readonly PathSegment[]): string[] {
  let node = schema as { shape?: Record<string, unknown>; unwrap?: () => unknown } | undefined;
  for (const segment of [...path, undefined]) {
    while (node && !node.shape && typeof node.unwrap === "function") node = node.unwrap() as typeof node;
    if (!node?.shape) return [];
    if (segment === undefined) return Object.keys(node.shape);
    node = node.shape[String(segment)] as typeof node;
  }
  return [];
}

/** The file that declared a merged top-level key (for paths relative to it): the root, or the base it came from. */
function sourceOf(loaded: LoadedPolicy, key: string, value: unknown): PolicySource {
  const wanted = JSON.stringify(value);
  for (const source of loaded.sources) {
    const own = (source.doc.toJS({ maxAliasCount: 100 }) as Record<string, unknown> | null)?.[key];
    if (own !== undefined && JSON.stringify(own) === wanted) return source;
  }
  return loaded.source;
}

function wildcards(path: readonly string[]): number {
  return path.filter((segment) => segment === "*").length;
}

/** Operators that never hold for a missing value: a rule using one needs its argument present. */
const NEEDS_VALUE = new Set([
  "eq",
  "in",
  "contains",
  "regex",
  "gt",
  "gte",
  "lt",
  "lte",
  "prefix",
  "glob",
  "flows",
  "from",
]);

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

/** A `tool:` key at the top of a `when` narrows the index; nested ones are plain tests. */
function toolGlobs(when: Record<string, unknown> | undefined, report: Report): GlobMatcher | undefined {
  const tool = when?.tool;
  if (typeof tool === "string") return guardGlobs([tool], () => {});
  if (Array.isArray(tool) && tool.length && tool.every((t) => typeof t === "string"))
    return guardGlobs(tool, () => {});
  void report;
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

function compileDetectors(
  spec: Record<string, DetectEntry>,
  report: (name: string, path: PathSegment[], message: string, help?: string) => void,
): DetectorUse[] {
  const uses: DetectorUse[] = [];
  for (const [name, entry] of Object.entries(spec)) {
    const detector = DETECTORS.get(name);
    if (!detector) {
      const guess = didYouMean(name, DETECTORS.keys());
      report(
        name,
        [],
        `unknown detector \`${name}\``,
        guess ? `did you mean \`${guess}\`?` : `detectors: ${[...DETECTORS.keys()].join(", ")}`,
      );
      continue;
    }
    if (typeof entry === "string") {
      uses.push({ detector, verdict: entry });
      continue;
    }
    const { args, outputs, ...options } = entry;
    let configured = detector;
    if (detector.options && detector.configure) {
      const parsed = detector.options.safeParse(options);
      if (!parsed.success) {
        for (const issue of parsed.error.issues) {
          const sub = issue.path.filter((p): p is PathSegment => typeof p !== "symbol");
          const keys = issue.code === "unrecognized_keys" ? issue.keys : [];
          if (keys.length)
            for (const key of keys) report(name, [...sub, key], `unknown \`${name}\` option \`${key}\``);
          else
            report(name, sub, `\`${name}\`: ${issue.message.replace(/^Invalid input: /, "").toLowerCase()}`);
        }
        continue;
      }
      configured = detector.configure(parsed.data);
    } else {
      for (const key of Object.keys(options)) report(name, [key], `unknown \`${name}\` option \`${key}\``);
    }
    uses.push({
      detector: configured,
      verdict: args ?? "allow",
      outputs: outputs === "allow" ? undefined : outputs,
    });
  }
  return uses;
}

/** Tool-level `detect` overrides policy-wide entries; `allow` switches a detector off. */
function mergeDetectors(base: DetectorUse[], own: DetectorUse[]): DetectorUse[] {
  const byName = new Map(base.map((use) => [use.detector.name, use]));
  for (const use of own) byName.set(use.detector.name, use);
  return [...byName.values()].filter((use) => use.verdict !== "allow" || use.outputs !== undefined);
}

export type { EvalContext };

/**
 * Declarations that load but may not say what their author means: a tool with `fields` and no
 * `produces` (the parts no field names carry no label, and are trusted values for `from`), and a
 * `from` source whose outputs are labelled (none of its values is ever trusted).
 */
function provenanceWarnings(
  policy: LoadedPolicy["policy"],
  origins: LoadedPolicy["origins"],
  loaded: LoadedPolicy,
  fromSites: ReadonlyArray<{ source: string; origin: Origin; at: PathSegment[] }>,
): PolicyIssue[] {
  const out: PolicyIssue[] = [];
  const tools = policy.tools ?? {};
  for (const [name, decl] of Object.entries(tools)) {
    if (!decl.fields || decl.produces !== undefined) continue;
    const origin = origins.tools.get(name) ?? { source: loaded.source, path: ["tools", name] };
    out.push(
      issueAtPath(
        origin.source,
        [...origin.path, "fields"],
        `tool \`${name}\` has \`fields\` and no \`produces\``,
        {
          atKey: true,
          help: "the parts no field names carry no label and are trusted values for `from`; say so with `produces: []`, or label the rest",
        },
      ),
    );
  }
  const warned = new Set<string>();
  for (const { source, origin, at } of fromSites) {
    const decl = Object.hasOwn(tools, source) ? tools[source] : undefined;
    const labels = [
      ...(decl?.produces ?? []),
      ...Object.values(policy.servers ?? {}).flatMap((s) => s.tools?.[source]?.produces ?? []),
    ];
    if (!labels.length || warned.has(source)) continue;
    warned.add(source);
    out.push(
      issueAtPath(
        origin.source,
        [...origin.path, ...at],
        `trusted value source \`${source}\` produces labels (${[...new Set(labels)].join(", ")}): none of its values is trusted`,
        {
          help: "a value in a labelled output never vouches for an argument (`from`, `unless: [tool:...]`); label its untrusted parts with `fields` instead",
        },
      ),
    );
  }
  return out;
}
