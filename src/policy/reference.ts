import { Environment } from "@marcbachmann/cel-js";
import { RE2JS } from "re2js";
import { CONSTRAINT_KINDS, compileShadowCheck, DETECTORS } from "../analyzers/index.js";
import type { Call, Finding, Verdict } from "../core/index.js";
import type { FlowHit } from "./context.js";
import type { DetectEntry, RawPolicy } from "./schema.js";
import { isValueOperator, unknownWord, whenKeyOf } from "./vocabulary.js";
import type { RiskOperator } from "./vocabulary.js";

/**
 * The reference evaluator: a direct reading of the policy semantics (README, "Policy reference
 * (version 1)"), kept small and slow on purpose so that it is easy to check by eye. It walks the
 * validated policy on every call: nothing is compiled ahead, indexed or cached. The compiled
 * engine (`evaluateCall`) is tested against it; it is not for production use.
 *
 * In scope: malformed calls, rules, shorthand lists, every `when` key and operator, argument
 * constraints and detectors (their analyzers are the leaves, compiled per call), look-alike tool
 * names, `default`, verdict combination and the deciding rule. Session state comes in as data:
 * the labels seen, the flow hits of the session's content, endorsement and trusted values (for
 * `from`). Limits and budgets need counters and are out of scope.
 */

/** What the reference needs to know of a session. */
export interface ReferenceSession {
  /** Labels the session has received. */
  seen?: Iterable<string>;
  /** Labels found in the call's arguments by content fingerprints (host labels are added here). */
  flows?: readonly FlowHit[];
  /** True when the whole `text` occurs in content labelled with one of `labels`. */
  endorsed?(text: string, labels: readonly string[]): boolean;
  /**
   * True when `text` is a value from one of `sources` (a tool's outputs, input with that label, or
   * `args:<tool>.<path>`), for `from`; a source named `=<source>` holds its whole values only.
   */
  fromValues?(text: string, sources: readonly string[]): boolean;
  /** The session as CEL sees it; by default `{ id: call.session ?? "" }`. */
  view?: Record<string, unknown>;
  /** Labelled input recorded on the session (the user's request), for `user_asked`. */
  inputs?: ReadonlyArray<{ text: string; labels: readonly string[] }>;
}

/** The reference's answer: what the engine must also say. */
export interface ReferenceDecision {
  verdict: Verdict;
  /** The deciding contributor; null when nothing matched and `default` applied. */
  rule: string | null;
  reason: string;
  /** Every contributor (rules, shorthand entries, findings), most severe first, ties by name. */
  matched: string[];
  findings: Finding[];
  /** Labels that flowed into the arguments. */
  labels: string[];
}

const RANK: Record<Verdict, number> = { allow: 0, flag: 1, ask: 2, deny: 3 };
const RISK = ["minimal", "low", "moderate", "high", "critical"];
/** The documented bounds on a call's arguments (README: malformed calls). */
const MAX_DEPTH = 64;
const MAX_VALUES = 100_000;
const MAX_TEXT = 8 * 1024 * 1024;

const cel = new Environment({ unlistedVariablesAreDyn: false, homogeneousAggregateLiterals: false })
  .registerVariable("tool", "string")
  .registerVariable("server", "string")
  .registerVariable("args", "map")
  .registerVariable("agent", "map")
  .registerVariable("session", "map");

interface Contribution {
  verdict: Verdict;
  rule: string;
  reason: string;
}

interface Context {
  policy: RawPolicy;
  call: Call;
  tool: string;
  args: Record<string, unknown>;
  agent: Record<string, unknown>;
  decl: NonNullable<RawPolicy["tools"]>[string] | undefined;
  findings: Finding[];
  seen: Set<string>;
  flows: FlowHit[];
  endorsed: (text: string, labels: readonly string[]) => boolean;
  fromValues: (text: string, sources: readonly string[]) => boolean;
  view: Record<string, unknown>;
  inputs: ReadonlyArray<{ text: string; labels: readonly string[] }>;
}

/**
 * Decides `call` under `policy` (as validated by the loader, `loadPolicyObject(...).policy`; the
 * policy must also compile). Never throws: a malformed call denies, an internal error denies
 * (or flags under `fail: open`).
 */
export function referenceDecide(
  policy: RawPolicy,
  call: Call,
  session: ReferenceSession = {},
): ReferenceDecision {
  let problem: string | undefined;
  try {
    problem = callProblem(call);
  } catch (error) {
    problem = `the call cannot be read: ${(error as Error)?.message}`;
  }
  if (problem !== undefined) return only("deny", "malformed-call", `malformed call: ${problem}`);
  try {
    return decide(policy, call, session);
  } catch (error) {
    const open = policy.fail === "open";
    return only(
      open ? "flag" : "deny",
      "internal-error",
      `internal error: ${(error as Error)?.message ?? String(error)}`,
    );
  }
}

function only(verdict: Verdict, rule: string, reason: string): ReferenceDecision {
  return { verdict, rule, reason, matched: [rule], findings: [], labels: [] };
}

function decide(policy: RawPolicy, call: Call, session: ReferenceSession): ReferenceDecision {
  const tool = call.tool;
  const args = call.args ?? {};
  const tools = policy.tools ?? {};
  const decl = Object.hasOwn(tools, tool) ? tools[tool] : undefined;
  const findings: Finding[] = [];

  // Findings first: conditions can test them (`findings:`).
  if (decl === undefined) {
    const shadow = compileShadowCheck(Object.keys(tools))(tool);
    if (shadow) findings.push({ ...shadow, verdict: shadow.verdict ?? "deny" });
  } else {
    for (const [arg, constraints] of Object.entries(decl.args ?? {})) {
      // `required: true`: the argument must be there (read without going through arrays).
      if (
        (constraints as Record<string, unknown>).required === true &&
        plainValueAt(args, arg.split(".")) === undefined
      ) {
        findings.push({
          code: "arg.missing",
          arg,
          message: `\`${tool}\` requires the argument \`${arg}\` and the call does not have it`,
          verdict: "deny",
        });
      }
      // Every value the path reaches (through arrays, as conditions read it); a missing one is not checked.
      for (const value of valuesAt(args, arg.split("."))) {
        if (value === undefined) continue;
        for (const [kind, options] of Object.entries(constraints as Record<string, unknown>)) {
          if (kind === "required") continue;
          const constraint = CONSTRAINT_KINDS.get(kind)!;
          const out: Finding[] = [];
          constraint.compile(constraint.options.parse(options))(value, arg, out);
          for (const finding of out) findings.push({ ...finding, verdict: decl.on_violation ?? "deny" });
        }
      }
    }
  }
  for (const [name, entry] of Object.entries(detectorsFor(policy, decl))) {
    const verdict = typeof entry === "string" ? entry : (entry.args ?? "allow");
    if (verdict === "allow") continue;
    let detector = DETECTORS.get(name)!;
    if (typeof entry !== "string" && detector.configure && detector.options) {
      const { args: _args, outputs: _outputs, ...options } = entry;
      detector = detector.configure(detector.options.parse(options));
    }
    // What a detector reads of a value (leaves, keys, joined elements) is the detector's own rule.
    const out: Finding[] = [];
    if (detector.scanValue) detector.scanValue(args, "", out);
    else for (const [text, path] of stringLeaves(args, "")) detector.scan(text, path, out);
    for (const finding of out) findings.push({ ...finding, verdict: finding.verdict ?? verdict });
  }

  const flows = [...(session.flows ?? []), ...hostLabelHits(call, args)];
  const ctx: Context = {
    policy,
    call,
    tool,
    args,
    agent: call.agent ?? {},
    decl,
    findings,
    seen: new Set(session.seen ?? []),
    flows,
    endorsed: session.endorsed ?? (() => false),
    fromValues: session.fromValues ?? (() => false),
    view: session.view ?? { id: call.session ?? "" },
    inputs: session.inputs ?? [],
  };

  const contributions: Contribution[] = findings.map((f) => ({
    verdict: f.verdict ?? "deny",
    rule: f.code,
    reason: f.message,
  }));
  for (const verdict of ["allow", "flag", "ask", "deny"] as const) {
    for (const glob of policy[verdict] ?? []) {
      if (globMatches(glob, tool))
        contributions.push({
          verdict,
          rule: `${verdict}:${glob}`,
          reason: `\`${glob}\` is on the ${verdict} list`,
        });
    }
  }
  for (const rule of policy.rules ?? []) {
    if (holds(rule.when ?? {}, ctx)) {
      contributions.push({
        verdict: rule.verdict,
        rule: rule.name,
        reason: rule.message ?? `rule \`${rule.name}\` matched`,
      });
    }
  }

  contributions.sort(
    (a, b) => RANK[b.verdict] - RANK[a.verdict] || (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : 0),
  );
  const labels = [...new Set(flows.map((hit) => hit.label))];
  const first = contributions[0];
  if (first === undefined) {
    const verdict = policy.default ?? "deny";
    return {
      verdict,
      rule: null,
      reason: `no rule matched; the default is ${verdict}`,
      matched: [],
      findings,
      labels,
    };
  }
  return {
    verdict: first.verdict,
    rule: first.rule,
    reason: first.reason,
    matched: contributions.map((c) => c.rule),
    findings,
    labels,
  };
}

/** Policy-wide detectors, overridden one by one by the tool's own `detect`. */
function detectorsFor(policy: RawPolicy, decl: Context["decl"]): Record<string, DetectEntry> {
  return { ...policy.detect, ...decl?.detect };
}

/** Host labels name argument paths; a label on an argument that is absent carries nothing. */
function hostLabelHits(call: Call, args: Record<string, unknown>): FlowHit[] {
  const hits: FlowHit[] = [];
  for (const [arg, labels] of Object.entries(call.labels ?? {})) {
    const value = ownPath(args, arg.split("."));
    if (value === undefined) continue;
    const text = typeof value === "string" ? value : JSON.stringify(value);
    for (const label of labels) hits.push({ label, arg, source: "host", text });
  }
  return hits;
}

/**
 * A `when` map is a conjunction of its keys. Only `expr` can fail at run time; a condition that
 * fails is neither true nor false, and a false conjunct outweighs it (as in CEL's `&&`), so the
 * order of the keys never matters: false if any key is false, else the error, else true.
 */
function holds(when: Record<string, unknown>, ctx: Context): boolean {
  return every(
    Object.entries(when).map(
      ([key, spec]) =>
        () =>
          condition(key, spec, ctx),
    ),
  );
}

function every(tests: Array<() => boolean>): boolean {
  let failure: { error: unknown } | undefined;
  for (const test of tests) {
    try {
      if (!test()) return false;
    } catch (error) {
      failure ??= { error };
    }
  }
  if (failure) throw failure.error;
  return true;
}

/** A disjunction: true if any is true, else the error, else false. */
function some(tests: Array<() => boolean>): boolean {
  let failure: { error: unknown } | undefined;
  for (const test of tests) {
    try {
      if (test()) return true;
    } catch (error) {
      failure ??= { error };
    }
  }
  if (failure) throw failure.error;
  return false;
}

function condition(key: string, spec: unknown, ctx: Context): boolean {
  const word = whenKeyOf(key);
  switch (word) {
    case "tool":
      return strings(spec).some((glob) => globMatches(glob, ctx.tool));
    case "server":
      return (
        ctx.call.server !== undefined && strings(spec).some((glob) => globMatches(glob, ctx.call.server!))
      );
    case "sink":
      return ctx.decl?.sink !== undefined && strings(spec).includes(ctx.decl.sink);
    case "risk":
      return riskHolds(spec, ctx.decl?.risk);
    case "seen": {
      const { labels, all } = labelSet(spec);
      return all ? labels.every((l) => ctx.seen.has(l)) : labels.some((l) => ctx.seen.has(l));
    }
    case "flows":
      return flowsHold(spec, ctx, () => true);
    case "findings":
      return ctx.findings.some((finding) => strings(spec).some((glob) => globMatches(glob, finding.code)));
    case "expr": {
      const value = cel.evaluate(spec as string, {
        tool: ctx.tool,
        server: ctx.call.server ?? "",
        args: celView(ctx.args),
        agent: celView(ctx.agent),
        session: ctx.view,
      });
      return value === true;
    }
    case "user_asked": {
      // Each phrase as a pattern over the text: its words in order, apart from other letters and
      // digits; a word written `word*` is a prefix.
      const { labels: phrases, all } = labelSet(spec);
      const asked = (phrase: string) => {
        const words = [
          ...phrase
            .normalize("NFKC")
            .toLowerCase()
            .matchAll(/[\p{L}\p{N}]+(\*(?=\s|$))?/gu),
        ];
        const body = words
          .map((w) => (w[1] ? `${w[0].slice(0, -1)}[\\p{L}\\p{N}]*` : w[0]))
          .join("[^\\p{L}\\p{N}]+");
        const pattern = new RegExp(`(?:^|[^\\p{L}\\p{N}])${body}(?:$|[^\\p{L}\\p{N}])`, "u");
        return ctx.inputs.some(
          (input) =>
            input.labels.includes("user") && pattern.test(input.text.normalize("NFKC").toLowerCase()),
        );
      };
      return all ? phrases.every(asked) : phrases.some(asked);
    }
    case "any":
      return some((spec as Array<Record<string, unknown>>).map((when) => () => holds(when, ctx)));
    case "all":
      return every((spec as Array<Record<string, unknown>>).map((when) => () => holds(when, ctx)));
    case "not":
      return !holds(spec as Record<string, unknown>, ctx);
    case "args.":
      return valueHolds(ctx.args, key.slice(5).split("."), spec, ctx);
    case "agent.":
      return valueHolds(ctx.agent, key.slice(6).split("."), spec, ctx);
    case undefined:
      throw new Error(`unknown condition ${key}`);
    default:
      return unknownWord(word);
  }
}

/** What CEL sees of arguments and agent: their JSON reading, objects as maps (keys are data, even `constructor`). */
function celView(value: unknown): unknown {
  if (value === undefined) return null;
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return Array.from(value, celView);
  return new Map(
    Object.entries(value).flatMap(([key, item]) => (item === undefined ? [] : [[key, celView(item)]])),
  );
}

function strings(spec: unknown): string[] {
  return typeof spec === "string" ? [spec] : (spec as string[]);
}

function labelSet(spec: unknown): { labels: string[]; all: boolean } {
  if (spec !== null && typeof spec === "object" && !Array.isArray(spec)) {
    const map = spec as { any?: unknown; all?: unknown };
    return map.all !== undefined
      ? { labels: strings(map.all), all: true }
      : { labels: strings(map.any), all: false };
  }
  return { labels: strings(spec), all: false };
}

/** No declared risk: every comparison fails (an empty comparison map holds, as any empty conjunction). */
function riskHolds(spec: unknown, declared: string | undefined): boolean {
  const level = declared === undefined ? -1 : RISK.indexOf(declared);
  if (typeof spec === "string") return level >= 0 && level === RISK.indexOf(spec);
  return Object.entries(spec as Record<string, string>).every(([op, want]) => {
    const w = RISK.indexOf(want);
    if (level < 0) return false;
    const risk = op as RiskOperator;
    switch (risk) {
      case "eq":
        return level === w;
      case "gt":
        return level > w;
      case "gte":
        return level >= w;
      case "lt":
        return level < w;
      case "lte":
        return level <= w;
      default:
        return unknownWord(risk);
    }
  });
}

/**
 * `flows` (call-level, or per argument with `inArg`): list/`any` means some label has a hit,
 * `all` means every label has one; `{labels, unless}` is `any` that ignores endorsed leaves.
 */
function flowsHold(spec: unknown, ctx: Context, inArg: (hit: FlowHit) => boolean): boolean {
  let labels: string[];
  let all = false;
  let unless: string[] = [];
  if (spec !== null && typeof spec === "object" && !Array.isArray(spec) && "labels" in spec) {
    const long = spec as { labels: unknown; unless?: unknown };
    labels = strings(long.labels);
    unless = long.unless === undefined ? [] : strings(long.unless);
  } else ({ labels, all } = labelSet(spec));
  const counts = (label: string) =>
    ctx.flows.some(
      (hit) => hit.label === label && inArg(hit) && (unless.length === 0 || !ctx.endorsed(hit.text, unless)),
    );
  return all ? labels.every(counts) : labels.some(counts);
}

/**
 * `args.<path>` / `agent.<path>`: a scalar means equality, a map is a conjunction of operators
 * that one value at the path must satisfy together; `flows` (labels in the argument's leaves)
 * and `from` (some value at the path came from a trusted tool) are tested on their own.
 */
function valueHolds(root: unknown, path: string[], spec: unknown, ctx: Context): boolean {
  if (spec === null || typeof spec !== "object")
    return valuesAt(root, path).some((value) => same(value, spec));
  const { flows, from, ...rest } = spec as Record<string, unknown>;
  const ops = Object.entries(rest);
  if (flows !== undefined) {
    // The labelled leaf lies at or under one of the places the path denotes (through arrays: every element).
    const places = concretePaths(root, path, "");
    const inArg = (hit: FlowHit) => places.some((p) => hit.arg === p || hit.arg.startsWith(`${p}.`));
    if (!flowsHold(flows, ctx, inArg)) return false;
  }
  if (from !== undefined) {
    // `from: [source]`: the value at the path is one the source gave (a trusted value set); a
    // list (recipients) only when every element is. `{tools, match: value}` reads the sets of
    // whole values, named `=<source>`.
    const long = from !== null && typeof from === "object" && !Array.isArray(from);
    const spec = long ? (from as { tools: unknown; match?: string; find?: string }) : { tools: from };
    const sources = strings(spec.tools).map((source) => (spec.match === "value" ? `=${source}` : source));
    // `find`: every match of the pattern inside the value is a trusted value (at most 1000 matches).
    const pieces = (text: string): string[] | undefined => {
      if (spec.find === undefined) return [text];
      const out: string[] = [];
      const m = RE2JS.compile(spec.find).matcher(text);
      while (m.find()) if (out.push(m.group() ?? "") > 1000) return undefined;
      return out;
    };
    const trusted = (value: unknown) =>
      (typeof value === "string" || typeof value === "number") &&
      (pieces(String(value))?.every((piece) => ctx.fromValues(piece, sources)) ?? false);
    if (!valuesAt(root, path).some((value) => (Array.isArray(value) ? value.every(trusted) : trusted(value))))
      return false;
  }
  if (ops.length === 0) return true;
  return valuesAt(root, path).some((value) => ops.every(([op, operand]) => operator(op, operand, value)));
}

/**
 * The values a path denotes: own properties only; through an array, a numeric segment is an
 * index and any other segment applies to every element; a path that leads nowhere denotes
 * one missing value (`undefined`), so `ne`, `not_in` and `exists: false` hold for it.
 */
export function valuesAt(value: unknown, path: readonly string[]): unknown[] {
  if (path.length === 0) return [value];
  if (value === null || typeof value !== "object") return [undefined];
  const [segment, ...rest] = path;
  if (Array.isArray(value)) {
    if (/^\d+$/.test(segment)) return valuesAt(value[Number(segment)], rest);
    if (value.length === 0) return [undefined];
    const out: unknown[] = [];
    for (let i = 0; i < value.length; i++) for (const v of valuesAt(value[i], path)) out.push(v);
    return out;
  }
  return Object.hasOwn(value, segment)
    ? valuesAt((value as Record<string, unknown>)[segment], rest)
    : [undefined];
}

/** The concrete dotted paths (`items.0.body`, `items.1.body`) of the places `path` denotes under `value`. */
function concretePaths(value: unknown, path: readonly string[], prefix: string): string[] {
  if (path.length === 0) return [prefix];
  if (value === null || typeof value !== "object") return [];
  const [segment, ...rest] = path;
  const join = (key: string | number) => (prefix ? `${prefix}.${key}` : String(key));
  if (Array.isArray(value) && !/^\d+$/.test(segment)) {
    return Array.from(value.keys()).flatMap((i) => concretePaths(value[i], path, join(i)));
  }
  return Object.hasOwn(value, segment)
    ? concretePaths((value as Record<string, unknown>)[segment], rest, join(segment))
    : [];
}

/** Own-property lookup without looking through arrays (how constraints and host labels address arguments). */
function ownPath(value: unknown, path: readonly string[]): unknown {
  for (const segment of path) {
    if (value === null || typeof value !== "object" || !Object.hasOwn(value, segment)) return undefined;
    value = (value as Record<string, unknown>)[segment];
  }
  return value;
}

/** Scalar equality: strict, so `"1"` is not `1`; `-0` equals `0`. */
function same(a: unknown, b: unknown): boolean {
  return a === b;
}

function operator(op: string, operand: unknown, value: unknown): boolean {
  if (!isValueOperator(op)) throw new Error(`unknown operator ${op}`);
  switch (op) {
    case "eq":
      return same(value, operand);
    case "ne":
      return !same(value, operand);
    case "in":
      return (operand as unknown[]).some((item) => same(value, item));
    case "not_in":
      return !(operand as unknown[]).some((item) => same(value, item));
    case "contains":
      if (typeof value === "string") return typeof operand === "string" && value.includes(operand);
      return Array.isArray(value) && Array.from(value).some((item) => same(item, operand));
    case "regex":
      return (
        typeof value === "string" &&
        RE2JS.compile(operand as string)
          .matcher(value)
          .find()
      );
    case "gt":
      return typeof value === "number" && value > (operand as number);
    case "gte":
      return typeof value === "number" && value >= (operand as number);
    case "lt":
      return typeof value === "number" && value < (operand as number);
    case "lte":
      return typeof value === "number" && value <= (operand as number);
    case "prefix":
      return typeof value === "string" && value.startsWith(operand as string);
    case "glob":
      return typeof value === "string" && globMatches(operand as string, value);
    case "exists":
      return operand === true ? value !== undefined : value === undefined;
    default:
      return unknownWord(op);
  }
}

/** Every string leaf under `value`, with its dotted path (array elements by index). */
function stringLeaves(value: unknown, path: string): Array<[string, string]> {
  if (typeof value === "string") return [[value, path]];
  if (value === null || typeof value !== "object") return [];
  const out: Array<[string, string]> = [];
  const entries = Array.isArray(value)
    ? Array.from(value).map((v, i) => [String(i), v] as const)
    : Object.entries(value);
  for (const [key, child] of entries)
    for (const leaf of stringLeaves(child, path ? `${path}.${key}` : key)) out.push(leaf);
  return out;
}

type GlobToken = { any: true } | { one: true } | { char: string } | { set: string; negated: boolean };

/**
 * Glob matching, written independently of the engine's (which compiles to RE2): `*` is any run
 * of characters, `?` one character (a code point), `[abc]`/`[a-z]` one of a set (`[!...]` or
 * `[^...]`: none of it), `\x` the character x (a trailing `\` is itself). Case-sensitive, whole
 * text. Classes end at the first `]` after their first character.
 */
export function globMatches(glob: string, text: string): boolean {
  const tokens: GlobToken[] = [];
  const chars = Array.from(glob);
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i];
    if (ch === "*") tokens.push({ any: true });
    else if (ch === "?") tokens.push({ one: true });
    else if (ch === "\\") tokens.push({ char: chars[++i] ?? "\\" });
    else if (ch === "[") {
      const end = chars.indexOf("]", i + 2);
      let body = chars.slice(i + 1, end).join("");
      const negated = body.startsWith("!") || body.startsWith("^");
      if (negated) body = body.slice(1);
      tokens.push({ set: body, negated });
      i = end;
    } else tokens.push({ char: ch });
  }
  // Simulate the pattern as a set of positions in `tokens`, one text character at a time.
  const closure = (at: Set<number>) => {
    for (const t of [...at]) for (let u = t; u < tokens.length && "any" in tokens[u]; u++) at.add(u + 1);
    return at;
  };
  let states = closure(new Set([0]));
  for (const ch of text) {
    const next = new Set<number>();
    for (const t of states) {
      const token = tokens[t];
      if (token === undefined) continue;
      if ("any" in token) next.add(t);
      else if (oneMatches(token, ch)) next.add(t + 1);
    }
    states = closure(next);
    if (states.size === 0) return false;
  }
  return states.has(tokens.length);
}

function oneMatches(token: Exclude<GlobToken, { any: true }>, ch: string): boolean {
  if ("one" in token) return true;
  if ("char" in token) return token.char === ch;
  const set = Array.from(token.set);
  let inSet = false;
  for (let k = 0; k < set.length; k++) {
    if (set[k + 1] === "-" && k + 2 < set.length) {
      const cp = ch.codePointAt(0)!;
      if (cp >= set[k].codePointAt(0)! && cp <= set[k + 2].codePointAt(0)!) inSet = true;
      k += 2;
    } else if (set[k] === ch) inSet = true;
  }
  return inSet !== token.negated;
}

/** Why a call is not something the engine can decide on, or undefined. */
function callProblem(call: Call): string | undefined {
  if (call === null || typeof call !== "object") return "not an object";
  if (typeof call.tool !== "string" || call.tool.length === 0 || call.tool.length > 256)
    return "bad tool name";
  if (call.args !== undefined && !isRecord(call.args)) return "`args` is not an object";
  if (call.agent !== undefined && !isRecord(call.agent)) return "`agent` is not an object";
  if (call.server !== undefined && typeof call.server !== "string") return "`server` is not a string";
  if (call.session !== undefined && typeof call.session !== "string") return "`session` is not a string";
  if (
    call.cost !== undefined &&
    !(typeof call.cost === "number" && Number.isFinite(call.cost) && call.cost >= 0)
  )
    return "bad cost";
  if (call.labels !== undefined) {
    if (!isRecord(call.labels)) return "`labels` is not an object";
    for (const labels of Object.values(call.labels)) {
      if (!Array.isArray(labels) || !labels.every((l) => typeof l === "string"))
        return "`labels` holds a non-list";
    }
  }
  for (const [what, value] of [
    ["args", call.args],
    ["agent", call.agent],
    ["labels", call.labels],
  ] as const) {
    if (value === undefined) continue;
    const budget = { values: 0, text: 0 };
    const problem = dataProblem(value, 1, budget);
    if (problem) return `\`${what}\`: ${problem}`;
  }
  return undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** JSON-like data within the documented bounds: plain objects, arrays, strings, numbers, booleans, null; keys count as text. */
function dataProblem(
  value: unknown,
  level: number,
  budget: { values: number; text: number },
): string | undefined {
  if (++budget.values > MAX_VALUES) return "too many values";
  if (typeof value === "string")
    return (budget.text += value.length) > MAX_TEXT ? "too much text" : undefined;
  if (value === null || value === undefined || typeof value === "number" || typeof value === "boolean")
    return undefined;
  if (typeof value !== "object") return `a ${typeof value}`;
  if (level > MAX_DEPTH) return "too deep";
  if (Array.isArray(value)) {
    if (value.length > MAX_VALUES) return "too many values";
    for (let i = 0; i < value.length; i++) {
      const problem = dataProblem(value[i], level + 1, budget);
      if (problem) return problem;
    }
    return undefined;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return "not a plain object";
  for (const key of Object.keys(value)) {
    if ((budget.text += key.length) > MAX_TEXT) return "too much text";
    const problem = dataProblem((value as Record<string, unknown>)[key], level + 1, budget);
    if (problem) return problem;
  }
  return undefined;
}

/** The value at a dotted path through own properties only (no array spreading), as `required` reads it. */
function plainValueAt(value: unknown, path: readonly string[]): unknown {
  for (const segment of path) {
    if (value === null || typeof value !== "object" || !Object.hasOwn(value, segment)) return undefined;
    value = (value as Record<string, unknown>)[segment];
  }
  return value;
}

/**
 * The labels `fields` give each leaf of a structured tool output (a direct reading of the
 * `fields` semantics, written apart from the engine's split): a leaf (a string, a number, or an
 * object key under its parent's path) carries the labels of the deepest node on its path that
 * some field names, else `produces`; at one node the longest pattern wins, then the one with
 * fewer `*`, then the first in the file. A pattern segment is a key, `*` (any key or index) or an
 * index; through an array, a named segment passes any index. Without `fields`, every leaf
 * carries `produces`; with them, a scalar output carries `produces` and every label they declare. `declassifies` removes labels everywhere. Returns each leaf and key in
 * document order: its dotted path (a key as `<path>.{key}`), its text and its labels (sorted).
 */
export function referenceFieldLabels(
  decl: { produces?: string[]; fields?: Record<string, string[]>; declassifies?: string[] },
  output: unknown,
): Array<{ path: string; text: string; labels: string[] }> {
  const patterns = Object.entries(decl.fields ?? {}).map(([path, labels], order) => ({
    path: path.split("."),
    labels,
    order,
  }));
  const drop = new Set(decl.declassifies ?? []);
  const clean = (labels: readonly string[]) => [...new Set(labels)].filter((l) => !drop.has(l)).sort();
  const named = (steps: Array<{ key: string; index: boolean }>) => {
    const hits = patterns.filter((p) => patternNames(p.path, steps));
    hits.sort(
      (a, b) =>
        b.path.length - a.path.length ||
        a.path.filter((s) => s === "*").length - b.path.filter((s) => s === "*").length ||
        a.order - b.order,
    );
    return hits[0];
  };
  const labelsAt = (steps: Array<{ key: string; index: boolean }>) => {
    for (let d = steps.length; d >= 1; d--) {
      const hit = named(steps.slice(0, d));
      if (hit) return clean(hit.labels);
    }
    return clean(decl.produces ?? []);
  };
  const out: Array<{ path: string; text: string; labels: string[] }> = [];
  if (patterns.length && (output === null || typeof output !== "object")) {
    // Fields cannot be applied to a scalar: it carries `produces` and every label they declare.
    const all = clean([...(decl.produces ?? []), ...patterns.flatMap((p) => p.labels)]);
    return typeof output === "string" || typeof output === "number"
      ? [{ path: "", text: String(output), labels: all }]
      : [];
  }
  const visit = (value: unknown, steps: Array<{ key: string; index: boolean }>) => {
    const dotted = steps.map((s) => s.key).join(".");
    if (typeof value === "string" || typeof value === "number")
      out.push({ path: dotted, text: String(value), labels: labelsAt(steps) });
    else if (Array.isArray(value))
      for (const [i, item] of value.entries()) visit(item, [...steps, { key: String(i), index: true }]);
    else if (value !== null && typeof value === "object")
      for (const [key, item] of Object.entries(value)) {
        out.push({ path: `${dotted}.{${key}}`, text: key, labels: labelsAt(steps) });
        visit(item, [...steps, { key, index: false }]);
      }
  };
  visit(output, []);
  return out;
}

/** Whether a field pattern names exactly the node at `steps` (arrays pass a named segment through). */
function patternNames(
  pattern: readonly string[],
  steps: ReadonlyArray<{ key: string; index: boolean }>,
): boolean {
  if (steps.length === 0) return pattern.length === 0;
  if (pattern.length === 0) return false;
  const [step, ...rest] = steps;
  const [segment, ...more] = pattern;
  if (step.index) {
    if ((segment === "*" || segment === step.key) && patternNames(more, rest)) return true;
    return segment !== "*" && !/^\d+$/.test(segment) && patternNames(pattern, rest);
  }
  return (segment === "*" || segment === step.key) && patternNames(more, rest);
}
