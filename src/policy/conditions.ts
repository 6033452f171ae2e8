import { Environment } from "@marcbachmann/cel-js";
import { RE2JS } from "re2js";
import { RISK_LEVELS } from "../core/index.js";
import type { RiskLevel } from "../core/index.js";
import { compileGlob, compileGlobs } from "./glob.js";
import type { EvalContext, FlowHit } from "./context.js";
import { didYouMean } from "./source.js";
import type { PathSegment } from "./source.js";
import {
  isValueOperator,
  OPERATORS,
  RISK_OPERATORS,
  unknownWord,
  WHEN_KEYS,
  whenKeyOf,
} from "./vocabulary.js";
import type { RiskOperator } from "./vocabulary.js";

/** A compiled `when`: a plain predicate over the call's context. */
export type Condition = (ctx: EvalContext) => boolean;

/** Reports a compile error at a path relative to the policy document. */
export type Report = (path: PathSegment[], message: string, help?: string, atKey?: boolean) => void;

/** What a compiled condition needs from the gateway, so work it does not need is skipped. */
export interface ConditionNeeds {
  flows: boolean;
  seen: boolean;
  findings: boolean;
  /** Tools whose outputs serve as trusted value sets (`from`, `unless: ["tool:x"]`). */
  valueSets: Set<string>;
  /** Told of every `from` source where it is named (the compiler warns about labelled sources). */
  onFrom?: (source: string, at: PathSegment[]) => void;
}

const celEnvironment = new Environment({
  unlistedVariablesAreDyn: false,
  homogeneousAggregateLiterals: false,
})
  .registerVariable("tool", "string")
  .registerVariable("server", "string")
  .registerVariable("args", "map")
  .registerVariable("agent", "map")
  .registerVariable("session", "map");

const always: Condition = () => true;

/** Compiles a `when` map (a conjunction) into one predicate. */
export function compileWhen(
  when: unknown,
  at: PathSegment[],
  report: Report,
  needs: ConditionNeeds,
): Condition {
  if (when === undefined) return always;
  if (when === null || typeof when !== "object" || Array.isArray(when)) {
    report(at, "`when` is a mapping of conditions");
    return always;
  }
  const parts: Condition[] = [];
  for (const [key, spec] of Object.entries(when)) {
    const part = compileKey(key, spec, [...at, key], report, needs);
    if (part) parts.push(part);
  }
  return conjunction(parts);
}

/**
 * Conditions that can fail at run time: a CEL expression, and any condition holding one. A
 * false part outweighs a failing one (as in CEL's `&&` and `||`), so that the order of keys
 * never changes a decision: such parts run after the others and their errors are held back
 * until no part can decide the result.
 */
const mayFail = new WeakSet<Condition>();

function failing(condition: Condition): Condition {
  mayFail.add(condition);
  return condition;
}

function conjunction(parts: Condition[]): Condition {
  if (parts.length === 0) return always;
  if (parts.length === 1) return parts[0];
  if (parts.some((part) => mayFail.has(part))) return settled(parts, false);
  if (parts.length === 2) {
    const [a, b] = parts;
    return (ctx) => a(ctx) && b(ctx);
  }
  return (ctx) => {
    for (const part of parts) if (!part(ctx)) return false;
    return true;
  };
}

/** `all` (any = false) or `any` (any = true) over parts of which some may fail: see `mayFail`. */
function settled(parts: Condition[], any: boolean): Condition {
  const sure = parts.filter((part) => !mayFail.has(part));
  const unsure = parts.filter((part) => mayFail.has(part));
  return failing((ctx) => {
    for (const part of sure) if (part(ctx) === any) return any;
    let failure: { error: unknown } | undefined;
    for (const part of unsure) {
      try {
        if (part(ctx) === any) return any;
      } catch (error) {
        failure ??= { error };
      }
    }
    if (failure) throw failure.error;
    return !any;
  });
}

function compileKey(
  key: string,
  spec: unknown,
  at: PathSegment[],
  report: Report,
  needs: ConditionNeeds,
): Condition | undefined {
  const word = whenKeyOf(key);
  switch (word) {
    case "tool": {
      const globs = stringList(spec, at, report);
      if (!globs) return undefined;
      const match = guardGlobs(globs, at, report);
      return (ctx) => match(ctx.tool);
    }
    case "server": {
      const globs = stringList(spec, at, report);
      if (!globs) return undefined;
      const match = guardGlobs(globs, at, report);
      return (ctx) => ctx.server !== undefined && match(ctx.server);
    }
    case "sink": {
      const sinks = stringList(spec, at, report);
      if (!sinks) return undefined;
      const set = new Set(sinks);
      return (ctx) => ctx.decl?.sink !== undefined && set.has(ctx.decl.sink);
    }
    case "risk":
      return compileRisk(spec, at, report);
    case "seen": {
      needs.seen = true;
      const set = labelSet(spec, at, report);
      if (!set) return undefined;
      const { labels, all } = set;
      return all
        ? (ctx) => labels.every((label) => ctx.seen.has(label))
        : (ctx) => labels.some((label) => ctx.seen.has(label));
    }
    case "flows": {
      needs.flows = true;
      return compileFlows(spec, at, report, undefined, needs);
    }
    case "findings": {
      needs.findings = true;
      const globs = stringList(spec, at, report);
      if (!globs) return undefined;
      const match = guardGlobs(globs, at, report);
      return (ctx) => ctx.findings.some((finding) => match(finding.code));
    }
    case "expr":
      return compileExpr(spec, at, report);
    case "user_asked":
      return compileUserAsked(spec, at, report);
    case "any":
    case "all": {
      if (!Array.isArray(spec) || spec.length === 0) {
        report(at, `\`${key}\` takes a non-empty list of conditions`);
        return undefined;
      }
      const parts = spec.map((item, i) => compileWhen(item, [...at, i], report, needs));
      if (key === "any" && parts.some((part) => mayFail.has(part))) return settled(parts, true);
      return key === "all"
        ? conjunction(parts)
        : (ctx) => {
            for (const part of parts) if (part(ctx)) return true;
            return false;
          };
    }
    case "not": {
      const inner = compileWhen(spec, at, report, needs);
      const negation: Condition = (ctx) => !inner(ctx);
      return mayFail.has(inner) ? failing(negation) : negation;
    }
    case "args.":
      return compileValueTest(spec, at, report, needs, key.slice(5).split("."), (ctx) => ctx.args);
    case "agent.":
      return compileValueTest(spec, at, report, needs, key.slice(6).split("."), (ctx) => ctx.agent);
    case undefined:
      break;
    default:
      return unknownWord(word);
  }
  const named = WHEN_KEYS.map((k) => (k.endsWith(".") ? `${k}<name>` : k));
  return reportUnknown(report, at, "condition", key, named, WHEN_KEYS, "conditions");
}

/** An unknown word, with a "did you mean" among `guesses`, else the list of what is known. */
function reportUnknown(
  report: Report,
  at: PathSegment[],
  what: string,
  word: string,
  guesses: readonly string[],
  known: readonly string[],
  knownName: string,
): undefined {
  const guess = didYouMean(word, guesses);
  report(
    at,
    `unknown ${what} \`${word}\``,
    guess ? `did you mean \`${guess}\`?` : `${knownName}: ${known.join(", ")}`,
    true,
  );
  return undefined;
}

function stringList(spec: unknown, at: PathSegment[], report: Report): string[] | undefined {
  if (typeof spec === "string") return [spec];
  if (Array.isArray(spec) && spec.length > 0 && spec.every((item) => typeof item === "string")) return spec;
  report(at, "expected a string or a non-empty list of strings");
  return undefined;
}

function guardGlobs(globs: string[], at: PathSegment[], report: Report) {
  try {
    return compileGlobs(globs);
  } catch (error) {
    report(at, `bad glob: ${(error as Error).message}`);
    return () => false;
  }
}

function labelSet(
  spec: unknown,
  at: PathSegment[],
  report: Report,
): { labels: string[]; all: boolean } | undefined {
  if (spec && typeof spec === "object" && !Array.isArray(spec)) {
    const keys = Object.keys(spec);
    if (keys.length === 1 && (keys[0] === "any" || keys[0] === "all")) {
      const labels = stringList((spec as Record<string, unknown>)[keys[0]], [...at, keys[0]], report);
      return labels && { labels, all: keys[0] === "all" };
    }
    report(at, "expected a list of labels, `{any: [...]}` or `{all: [...]}`");
    return undefined;
  }
  const labels = stringList(spec, at, report);
  return labels && { labels, all: false };
}

/**
 * `flows: [L]`, `{any: [...]}`, `{all: [...]}` or `{labels: [...], unless: [...]}`. With `arg`, only
 * hits in that argument (or below it) count.
 */
function compileFlows(
  spec: unknown,
  at: PathSegment[],
  report: Report,
  arg: string | undefined,
  needs: ConditionNeeds,
): Condition | undefined {
  let labels: string[] | undefined;
  let all = false;
  let unless: string[] = [];
  if (spec && typeof spec === "object" && !Array.isArray(spec) && "labels" in spec) {
    const { labels: l, unless: u, ...rest } = spec as Record<string, unknown>;
    for (const extra of Object.keys(rest))
      report([...at, extra], `unknown key \`${extra}\` in \`flows\``, "expected `labels` and `unless`", true);
    labels = stringList(l, [...at, "labels"], report);
    if (u !== undefined) unless = stringList(u, [...at, "unless"], report) ?? [];
    unless.forEach((label, i) => {
      if (!label.startsWith("tool:")) return;
      needs.valueSets.add(label.slice(5));
      needs.onFrom?.(label.slice(5), [...at, "unless", i]);
    });
  } else {
    const set = labelSet(spec, at, report);
    labels = set?.labels;
    all = set?.all ?? false;
  }
  if (!labels) return undefined;
  const wanted = labels;
  const segments = arg?.split(".");
  const counts = (ctx: EvalContext, hit: FlowHit): boolean =>
    (arg === undefined ||
      hit.arg === arg ||
      hit.arg.startsWith(`${arg}.`) ||
      leafUnder(ctx.args, segments!, hit.arg)) &&
    (unless.length === 0 || !ctx.endorsed(hit.text, unless));
  if (all) {
    return (ctx) => {
      const hits = ctx.flows();
      return wanted.every((label) => hits.some((hit) => hit.label === label && counts(ctx, hit)));
    };
  }
  return (ctx) => {
    const hits = ctx.flows();
    for (const hit of hits) if (wanted.includes(hit.label) && counts(ctx, hit)) return true;
    return false;
  };
}

/**
 * Whether the leaf `leaf` (a scanner path such as `items.0.body`) lies at or under `path` read as
 * conditions read it: through an array, a non-numeric segment passes any element's index.
 */
function leafUnder(root: unknown, path: readonly string[], leaf: string): boolean {
  const parts = leaf.split(".");
  let value = root;
  let j = 0;
  for (const segment of path) {
    while (Array.isArray(value) && !/^\d+$/.test(segment)) {
      if (j >= parts.length || !/^\d+$/.test(parts[j])) return false;
      value = value[Number(parts[j++])];
    }
    if (parts[j] !== segment || value === null || typeof value !== "object" || !hasOwn.call(value, segment))
      return false;
    value = (value as Record<string, unknown>)[segment];
    j++;
  }
  return true;
}

/** Phrases per `user_asked`, and words per phrase: the condition stays cheap and readable. */
const MAX_PHRASES = 32;
const MAX_PHRASE_WORDS = 8;
/** Lower-cased NFKC words (runs of letters and digits); the session bounds each input's text. */
export function askedWords(text: string): string[] {
  return text
    .normalize("NFKC")
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter((word) => word.length > 0);
}

/**
 * `user_asked: [phrase, ...]` (any), `{any: [...]}` or `{all: [...]}`: the phrase occurs, as whole
 * words in order, in input labelled `user` (what the user typed, not what a tool returned). A
 * phrase word ending in `*` matches words that start with it (`delet*`: delete, deleting).
 */
function compileUserAsked(spec: unknown, at: PathSegment[], report: Report): Condition | undefined {
  const set = labelSet(spec, at, report);
  if (!set) return undefined;
  if (set.labels.length > MAX_PHRASES) {
    report(at, `\`user_asked\` takes at most ${MAX_PHRASES} phrases`);
    return undefined;
  }
  const phrases: string[][] = [];
  for (const phrase of set.labels) {
    const words = phraseWords(phrase);
    if (words.length === 0 || words.length > MAX_PHRASE_WORDS || words.some((w) => w === "*")) {
      report(at, `\`user_asked\`: \`${phrase}\` is not a phrase of 1 to ${MAX_PHRASE_WORDS} words`);
      return undefined;
    }
    phrases.push(words);
  }
  const occurs = (words: readonly string[], phrase: readonly string[]) => {
    for (let i = 0; i + phrase.length <= words.length; i++) {
      let j = 0;
      while (j < phrase.length && wordMatches(phrase[j], words[i + j])) j++;
      if (j === phrase.length) return true;
    }
    return false;
  };
  const typed = (ctx: EvalContext) =>
    ctx
      .userInputs()
      .filter((input) => input.labels.includes("user"))
      .map((input) => askedWords(input.text));
  return set.all
    ? (ctx) => {
        const inputs = typed(ctx);
        return phrases.every((phrase) => inputs.some((words) => occurs(words, phrase)));
      }
    : (ctx) => {
        const inputs = typed(ctx);
        return phrases.some((phrase) => inputs.some((words) => occurs(words, phrase)));
      };
}

/** A phrase's words; one that ends in `*` keeps it (a prefix). */
export function phraseWords(phrase: string): string[] {
  return phrase.split(/\s+/).flatMap((chunk) => {
    const prefix = chunk.endsWith("*");
    const words = askedWords(prefix ? chunk.slice(0, -1) : chunk);
    if (prefix && words.length) words[words.length - 1] += "*";
    return words;
  });
}

function wordMatches(pattern: string, word: string): boolean {
  return pattern.endsWith("*") ? word.startsWith(pattern.slice(0, -1)) : word === pattern;
}

function compileRisk(spec: unknown, at: PathSegment[], report: Report): Condition | undefined {
  const rank = (level: unknown, where: PathSegment[]): number => {
    const i = RISK_LEVELS.indexOf(level as RiskLevel);
    if (i < 0) report(where, `unknown risk level \`${String(level)}\``, `levels: ${RISK_LEVELS.join(", ")}`);
    return i;
  };
  const levelOf = (ctx: EvalContext) => (ctx.decl?.risk ? RISK_LEVELS.indexOf(ctx.decl.risk) : -1);
  if (typeof spec === "string") {
    const want = rank(spec, at);
    return (ctx) => levelOf(ctx) === want;
  }
  if (spec && typeof spec === "object" && !Array.isArray(spec)) {
    const tests: Condition[] = [];
    for (const [op, level] of Object.entries(spec)) {
      const want = rank(level, [...at, op]);
      if (!(RISK_OPERATORS as readonly string[]).includes(op)) {
        const expected = `${RISK_OPERATORS.slice(0, -1).join(", ")} or ${RISK_OPERATORS.at(-1)}`;
        report([...at, op], `unknown risk operator \`${op}\``, `expected ${expected}`, true);
        continue;
      }
      tests.push(riskTest(op as RiskOperator, want, levelOf));
    }
    return conjunction(tests);
  }
  report(at, "expected a risk level or `{gte: level}`");
  return undefined;
}

function riskTest(op: RiskOperator, want: number, levelOf: (ctx: EvalContext) => number): Condition {
  switch (op) {
    case "gte":
      return (ctx) => levelOf(ctx) >= want;
    case "gt":
      return (ctx) => levelOf(ctx) > want;
    case "lte":
      return (ctx) => levelOf(ctx) >= 0 && levelOf(ctx) <= want;
    case "lt":
      return (ctx) => levelOf(ctx) >= 0 && levelOf(ctx) < want;
    case "eq":
      return (ctx) => levelOf(ctx) === want;
    default:
      return unknownWord(op);
  }
}

function compileExpr(spec: unknown, at: PathSegment[], report: Report): Condition | undefined {
  if (typeof spec !== "string") {
    report(at, "`expr` is a CEL expression string");
    return undefined;
  }
  let program: ReturnType<Environment["parse"]>;
  try {
    program = celEnvironment.parse(spec);
  } catch (error) {
    report(at, `bad CEL expression: ${celMessage(error)}`);
    return undefined;
  }
  const check = program.check();
  if (!check.valid) {
    report(at, `CEL type error: ${celMessage(check.error)}`);
    return undefined;
  }
  if (check.type !== "bool" && check.type !== "dyn") {
    report(at, `CEL expression has type \`${check.type}\`; a condition must be \`bool\``);
    return undefined;
  }
  // A runtime error (a missing key, say) throws: the engine treats it as an internal error (fail policy).
  return failing(
    (ctx) =>
      program({
        tool: ctx.tool,
        server: ctx.server ?? "",
        args: celData(ctx.args),
        agent: celData(ctx.agent),
        session: ctx.sessionView(),
      }) === true,
  );
}

/**
 * cel-js types an object by its `constructor` property and has no type for `undefined`, so an
 * own `constructor` key (`{"constructor": null}`, chosen by the caller) or an undefined value
 * made every expression over it fail. Such values reach CEL as their JSON reading, objects as
 * Maps; anything else passes as it is (one walk, no copy).
 */
function celData(value: unknown): unknown {
  return celUnsafe(value) ? celCopy(value) : value;
}

function celUnsafe(value: unknown): boolean {
  if (value === null || typeof value !== "object") return value === undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (celUnsafe(value[i])) return true;
    return false;
  }
  if (hasOwn.call(value, "constructor")) return true;
  for (const key in value)
    if (hasOwn.call(value, key) && celUnsafe((value as Record<string, unknown>)[key])) return true;
  return false;
}

function celCopy(value: unknown): unknown {
  if (value === null || typeof value !== "object") return value ?? null;
  if (Array.isArray(value)) return Array.from(value, celCopy);
  const map = new Map<string, unknown>();
  for (const key in value) {
    const item = (value as Record<string, unknown>)[key];
    if (hasOwn.call(value, key) && item !== undefined) map.set(key, celCopy(item));
  }
  return map;
}

function celMessage(error: unknown): string {
  return String((error as Error)?.message ?? error).split("\n")[0];
}

type Getter = (ctx: EvalContext) => unknown;

function and(a: Condition | undefined, b: Condition | undefined): Condition | undefined {
  if (!a || !b) return a ?? b;
  return (ctx) => a(ctx) && b(ctx);
}
type ValuePredicate = (value: unknown) => boolean;

function compileValueTest(
  spec: unknown,
  at: PathSegment[],
  report: Report,
  needs: ConditionNeeds,
  path: string[],
  root: Getter,
): Condition | undefined {
  if (path.some((segment) => segment === "")) {
    report(at, "empty segment in path");
    return undefined;
  }
  let predicate: ValuePredicate | undefined;
  let flowTest: Condition | undefined;
  if (spec === null || typeof spec !== "object") {
    if (Number.isNaN(spec)) {
      report(at, NAN_OPERAND);
      return undefined;
    }
    predicate = (value) => value === spec;
  } else if (Array.isArray(spec)) {
    report(at, "a list is ambiguous here", "use `{in: [...]}` for one of several values, or `{contains: x}`");
    return undefined;
  } else {
    const tests: ValuePredicate[] = [];
    for (const [op, operand] of Object.entries(spec)) {
      if (op === "flows") {
        if (root === undefined || at[at.length - 1]?.toString().startsWith("agent.")) {
          report([...at, op], "`flows` applies to arguments only");
          continue;
        }
        needs.flows = true;
        flowTest = and(flowTest, compileFlows(operand, [...at, op], report, path.join("."), needs));
        continue;
      }
      if (op === "from") {
        const spec = fromSpec(operand, [...at, op], report);
        if (!spec) continue;
        for (const source of spec.sources) {
          needs.valueSets.add(source);
          needs.onFrom?.(source, [...at, op]);
        }
        // Whole-value mode reads the sets of whole values (`=source`); word mode also takes words and lines.
        const keys = spec.match === "value" ? spec.sources.map((source) => `=${source}`) : spec.sources;
        // A list (recipients) holds only when every element is a trusted value; with `find`, every
        // match of the pattern inside the value is (an IBAN inside a free-text body).
        const find = spec.find;
        const whole = (ctx: EvalContext, text: string) => ctx.fromValues(text, keys);
        const trusted = (ctx: EvalContext, value: unknown): boolean => {
          if (typeof value !== "string" && typeof value !== "number") return false;
          if (!find) return whole(ctx, String(value));
          const matcher = find.matcher(String(value));
          let found = 0;
          while (matcher.find()) {
            if (++found > MAX_FIND_MATCHES || !whole(ctx, matcher.group() ?? "")) return false;
          }
          return true;
        };
        flowTest = and(flowTest, (ctx) =>
          matchAt(root(ctx), path, 0, (value) =>
            Array.isArray(value) ? value.every((item) => trusted(ctx, item)) : trusted(ctx, value),
          ),
        );
        continue;
      }
      const test = compileOperator(op, operand, [...at, op], report);
      if (test) tests.push(test);
    }
    if (tests.length === 1) predicate = tests[0];
    else if (tests.length > 1) predicate = (value) => tests.every((test) => test(value));
  }
  const valueTest: Condition | undefined = predicate ? valueCondition(root, path, predicate) : undefined;
  if (valueTest && flowTest) {
    const v = valueTest;
    const f = flowTest;
    return (ctx) => v(ctx) && f(ctx);
  }
  return valueTest ?? flowTest;
}

const hasOwn = Object.prototype.hasOwnProperty;

/** How `from` compares: `word` (a whole value, a line or a word of one), `value` (a whole value only). */
export type FromMatch = "word" | "value";

/** Matches of a `find` pattern inside one value; past this many the value is not trusted. */
const MAX_FIND_MATCHES = 1000;

/**
 * `from: [source, ...]` or `from: { tools: [source, ...], match: value | word, find: regex }`. A
 * source is a tool (its outputs' unlabelled values), an input label (`user`: what the user typed)
 * or `args:<tool>.<path>` (values passed to allowed earlier calls of that tool). With `find` (RE2),
 * the test is on every match of the pattern inside the value rather than on the whole value.
 */
export function fromSpec(
  spec: unknown,
  at: PathSegment[],
  report: Report,
): { sources: string[]; match: FromMatch; find?: RE2JS } | undefined {
  let sources: string[] | undefined;
  let match: FromMatch = "word";
  let find: RE2JS | undefined;
  if (spec !== null && typeof spec === "object" && !Array.isArray(spec)) {
    const { tools, match: m, find: f, ...rest } = spec as Record<string, unknown>;
    for (const extra of Object.keys(rest))
      report(
        [...at, extra],
        `unknown key \`${extra}\` in \`from\``,
        "expected `tools`, `match` and `find`",
        true,
      );
    sources = stringList(tools, [...at, "tools"], report);
    if (m !== undefined) {
      if (m === "value" || m === "word") match = m;
      else report([...at, "match"], `\`match\` is \`value\` or \`word\`, not \`${String(m)}\``);
    }
    if (f !== undefined) {
      if (typeof f !== "string" || f.length === 0)
        report([...at, "find"], "`find` takes a regex (RE2) string");
      else {
        try {
          find = RE2JS.compile(f);
          if (find.matcher("").find())
            report(
              [...at, "find"],
              `\`find\`: /${f}/ matches empty text`,
              "a pattern for the values to test, such as an IBAN",
            );
        } catch (error) {
          report([...at, "find"], `bad regex /${f}/: ${(error as Error).message}`, "patterns use RE2 syntax");
        }
      }
    }
  } else sources = stringList(spec, at, report);
  if (!sources) return undefined;
  for (const [i, source] of sources.entries()) {
    if (source.startsWith("args:") && !/^args:[^.]+\.[^.]/.test(source)) {
      const where = Array.isArray(spec) ? [...at, i] : typeof spec === "string" ? at : [...at, "tools", i];
      report(where, `\`${source}\`: an earlier call's values are named \`args:<tool>.<path>\``);
      return undefined;
    }
  }
  return { sources, match, find };
}

/** A value test as a condition; one-segment paths (the common `args.amount`) skip the general walk. */
function valueCondition(root: Getter, path: string[], predicate: ValuePredicate): Condition {
  if (path.length !== 1) return (ctx) => matchAt(root(ctx), path, 0, predicate);
  const key = path[0];
  return (ctx) => {
    const holder = root(ctx);
    if (holder === null || typeof holder !== "object" || Array.isArray(holder))
      return matchAt(holder, path, 0, predicate);
    return predicate(hasOwn.call(holder, key) ? (holder as Record<string, unknown>)[key] : undefined);
  };
}

/**
 * Tests the value at `path` under `value`. Own properties only (so `__proto__` and friends never
 * resolve to prototypes); through an array, a non-numeric segment means "any element".
 */
export function matchAt(
  value: unknown,
  path: readonly string[],
  i: number,
  predicate: ValuePredicate,
): boolean {
  if (i === path.length) return predicate(value);
  if (value === null || typeof value !== "object") return predicate(undefined);
  const segment = path[i];
  if (Array.isArray(value)) {
    if (/^\d+$/.test(segment)) return matchAt(value[Number(segment)], path, i + 1, predicate);
    for (const element of value) if (matchAt(element, path, i, predicate)) return true;
    return value.length === 0 ? predicate(undefined) : false;
  }
  return hasOwn.call(value, segment)
    ? matchAt((value as Record<string, unknown>)[segment], path, i + 1, predicate)
    : predicate(undefined);
}

function isScalar(value: unknown): boolean {
  return value === null || ["string", "number", "boolean"].includes(typeof value);
}

/** NaN equals nothing, not even itself (`eq`), yet a set or list lookup finds it (`in`, `contains`). */
const NAN_OPERAND = "NaN equals nothing: compare with a number, or test `exists`";

function compileOperator(
  op: string,
  operand: unknown,
  at: PathSegment[],
  report: Report,
): ValuePredicate | undefined {
  if (Number.isNaN(operand) || (Array.isArray(operand) && operand.some((item) => Number.isNaN(item)))) {
    return void report(at, `\`${op}\`: ${NAN_OPERAND}`);
  }
  const needNumber = () => {
    if (typeof operand !== "number" || !Number.isFinite(operand)) {
      report(at, `\`${op}\` takes a finite number`);
      return false;
    }
    return true;
  };
  const needString = () => {
    if (typeof operand !== "string") {
      report(at, `\`${op}\` takes a string`);
      return false;
    }
    return true;
  };
  if (!isValueOperator(op))
    return reportUnknown(report, at, "operator", op, OPERATORS, OPERATORS, "operators");
  switch (op) {
    case "eq":
      if (!isScalar(operand)) return void report(at, "`eq` takes a scalar");
      return (value) => value === operand;
    case "ne":
      if (!isScalar(operand)) return void report(at, "`ne` takes a scalar");
      return (value) => value !== operand;
    case "in":
    case "not_in": {
      if (!Array.isArray(operand) || !operand.every(isScalar))
        return void report(at, `\`${op}\` takes a list of scalars`);
      const set = new Set(operand);
      return op === "in" ? (value) => set.has(value) : (value) => !set.has(value);
    }
    case "contains":
      if (!isScalar(operand)) return void report(at, "`contains` takes a scalar");
      return (value) =>
        typeof value === "string"
          ? typeof operand === "string" && value.includes(operand)
          : Array.isArray(value) && value.includes(operand);
    case "regex": {
      if (!needString()) return undefined;
      let re: RE2JS;
      try {
        re = RE2JS.compile(operand as string);
      } catch (error) {
        return void report(
          at,
          `bad regex /${operand}/: ${(error as Error).message}`,
          "patterns use RE2 syntax (linear time: no backreferences or lookaround)",
        );
      }
      return (value) => typeof value === "string" && re.matcher(value).find();
    }
    case "gt":
      return needNumber() ? (value) => typeof value === "number" && value > (operand as number) : undefined;
    case "gte":
      return needNumber() ? (value) => typeof value === "number" && value >= (operand as number) : undefined;
    case "lt":
      return needNumber() ? (value) => typeof value === "number" && value < (operand as number) : undefined;
    case "lte":
      return needNumber() ? (value) => typeof value === "number" && value <= (operand as number) : undefined;
    case "prefix":
      return needString()
        ? (value) => typeof value === "string" && value.startsWith(operand as string)
        : undefined;
    case "glob": {
      if (!needString()) return undefined;
      try {
        const match = compileGlob(operand as string);
        return (value) => typeof value === "string" && match(value);
      } catch (error) {
        return void report(at, `bad glob: ${(error as Error).message}`);
      }
    }
    case "exists":
      if (typeof operand !== "boolean") return void report(at, "`exists` takes true or false");
      return operand ? (value) => value !== undefined : (value) => value === undefined;
    default:
      return unknownWord(op);
  }
}
