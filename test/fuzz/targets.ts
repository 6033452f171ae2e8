import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { CONSTRAINT_KINDS, compileShadowCheck, DETECTORS } from "../../src/analyzers/index.js";
import type { ArgCheck } from "../../src/analyzers/index.js";
import type { Call, Finding } from "../../src/core/index.js";
import { isVerdict, PolicyLoadError } from "../../src/core/index.js";
import { evaluateCall } from "../../src/gateway/index.js";
import { compilePolicy, loadPolicyFile, loadPolicyText } from "../../src/policy/index.js";
import type { RawPolicy } from "../../src/policy/index.js";
import type { Rng } from "./random.js";
import { mutate, randomString, randomValue } from "./random.js";

/**
 * What the fuzzer runs: the policy loader and compiler, every registered constraint kind and
 * detector, and the look-alike check. Kinds and detectors are read from the registries when
 * the targets are built, so a newly registered analyzer is fuzzed without changes here.
 */
export interface FuzzTarget {
  name: string;
  /** Builds one input from the iteration's generator (deterministic: same rng, same input). */
  generate(r: Rng): unknown;
  /** Runs one input; throws when the input found a bug (any throw is a finding). */
  run(input: unknown): void;
  /** A call slower than this (ms) is reported as a finding. */
  slowMs: number;
}

const ROOT = resolve(import.meta.dirname, "../..");
const CORPUS_DIRS = ["examples", "eval", "test"];

function files(dir: string, suffix: string): string[] {
  const base = join(ROOT, dir);
  if (!existsSync(base)) return [];
  return (readdirSync(base, { recursive: true }) as string[])
    .filter((f) => f.endsWith(suffix) && !f.includes("node_modules") && !f.includes("fuzz/"))
    .map((f) => join(base, f))
    .sort();
}

interface Seeds {
  policies: Array<{ file: string; text: string; policy?: RawPolicy }>;
  /** Known attack strings (and benign ones) by analyzer name, from the eval and red-team corpora. */
  strings: Map<string, string[]>;
  /** Option objects written in real policies, by constraint kind. */
  options: Map<string, unknown[]>;
}

let cached: Seeds | undefined;

/** Reads the seed corpus once: every policy under examples/, eval/ and test/, and the cases beside them. */
export function seeds(): Seeds {
  if (cached) return cached;
  const policies: Seeds["policies"] = [];
  const options = new Map<string, unknown[]>();
  const strings = new Map<string, string[]>();
  const add = <T>(map: Map<string, T[]>, key: string, value: T) =>
    map.set(key, [...(map.get(key) ?? []), value]);
  for (const file of CORPUS_DIRS.flatMap((dir) => files(dir, ".yaml"))) {
    const text = readFileSync(file, "utf8");
    let policy: RawPolicy | undefined;
    try {
      policy = loadPolicyFile(file).policy;
    } catch {
      // Not a policy, or a deliberately broken one: still a fine seed for the loader.
    }
    policies.push({ file, text, policy });
    for (const decl of Object.values(policy?.tools ?? {})) {
      for (const constraints of Object.values(decl.args ?? {})) {
        for (const [kind, opts] of Object.entries(constraints as Record<string, unknown>))
          add(options, kind, opts);
      }
    }
  }
  for (const file of CORPUS_DIRS.flatMap((dir) => files(dir, "cases.jsonl"))) {
    const analyzer = relative(ROOT, file).split("/").at(-2) ?? "any";
    for (const line of readFileSync(file, "utf8").split("\n")) {
      if (!line.trim()) continue;
      let item: { args?: Record<string, unknown>; tool?: string };
      try {
        item = JSON.parse(line);
      } catch {
        continue;
      }
      if (typeof item.tool === "string") add(strings, "identity", item.tool);
      for (const value of Object.values(item.args ?? {})) {
        if (typeof value === "string") {
          add(strings, analyzer, value);
          add(strings, "any", value);
        }
      }
    }
  }
  cached = { policies, strings, options };
  return cached;
}

/** Pieces the loader fuzzer splices into policies: YAML syntax, keys of the language, odd scalars. */
const YAML_TOKENS = [
  "\n",
  "\n  ",
  "\n    - ",
  ": ",
  "- ",
  "{",
  "}",
  "[",
  "]",
  ",",
  "'",
  '"',
  "#",
  "\t",
  "&a ",
  "*a",
  "<<: *a\n",
  "!!str ",
  "!!binary ",
  "!!js/function ",
  "? ",
  "|\n  ",
  ">-\n  ",
  "---\n",
  "...\n",
  "%YAML 1.1\n",
  "~",
  "null",
  ".nan",
  ".inf",
  "-.inf",
  "-0",
  "1e999",
  "0x1F",
  "0o17",
  "1_000",
  "true",
  "yes",
  "on",
  "__proto__",
  "constructor",
  "prototype",
  "version: 1\n",
  "rules:",
  "when:",
  "tool:",
  "args.x",
  "args.a.b",
  "agent.role",
  "any:",
  "all:",
  "not:",
  "expr:",
  "'args.a == 1'",
  "regex:",
  "'(a+)+$'",
  "glob:",
  "'[!a-z]*'",
  "eq:",
  "in: []",
  "exists: true",
  "flows: [untrusted]",
  "seen: {all: []}",
  "risk: {gte: high}",
  "verdict: deny",
  "default: allow",
  "extends: ./missing.yaml",
  "extends: [.]",
  "tools:",
  "detect: {secrets: deny}",
  "limits:",
  "rate: 30/minute",
  "max: 0",
  "budget: {max: 1}",
  "tests:",
  "expect: deny",
  "url: {private: block}",
  "path: {within: [/]}",
  "sql: {allow: [select]}",
  "shell: {programs: [ls]}",
  "enum: [1, '1']",
  "range: {min: 1, max: 0}",
  "max_length: -1",
  "[".repeat(200),
  "{a: ".repeat(100),
  "é",
  "😀",
  "\u202e",
  "\u0000",
  "\r\n",
];

/** Calls decided against every policy the loader fuzzer manages to compile. */
const PROBE_CALLS: Call[] = [
  { tool: "t", args: {} },
  {
    tool: "read_file",
    args: { path: "/etc/passwd", url: "http://169.254.169.254/", query: "DROP TABLE x", command: "rm -rf /" },
  },
  {
    tool: "send_email",
    args: { to: "a@b.example", body: "AKIAIOSFODNN7EXAMPLE" },
    agent: { role: "admin" },
    server: "github",
  },
  { tool: "refund", args: { amount: 1e308, items: [{ a: 1 }, null] } },
];

function loaderTarget(): FuzzTarget {
  const { policies } = seeds();
  return {
    name: "loader",
    slowMs: 2000,
    generate(r) {
      const seed = r.pick(policies);
      const other = r.pick(policies);
      let text =
        r.chance(0.2) && seed.policy
          ? JSON.stringify(seed.policy, null, r.chance(0.5) ? 1 : undefined)
          : seed.text;
      if (r.chance(0.15))
        text = text.slice(0, r.int(text.length)) + other.text.slice(r.int(other.text.length));
      return { file: seed.file, text: mutate(r, text, YAML_TOKENS, 8) };
    },
    run(input) {
      const { file, text } = input as { file: string; text: string };
      let policy: ReturnType<typeof compilePolicy>;
      try {
        policy = compilePolicy(loadPolicyText(text, file));
      } catch (error) {
        if (error instanceof PolicyLoadError) return;
        throw error;
      }
      for (const call of [...PROBE_CALLS, ...policy.tests.map(({ test }) => test.call as Call)]) {
        const decision = evaluateCall(policy, call, undefined);
        if (!isVerdict(decision.verdict) || typeof decision.reason !== "string")
          throw new Error(`not a decision: ${JSON.stringify(decision)}`);
      }
    },
  };
}

/** The finding must be well formed: hosts show `code` and `message`, and audit records store them. */
function checkFindings(out: Finding[]): void {
  for (const finding of out) {
    if (typeof finding.code !== "string" || !finding.code || typeof finding.message !== "string") {
      throw new Error(`malformed finding ${JSON.stringify(finding)}`);
    }
  }
}

function attackStrings(name: string): string[] {
  const { strings } = seeds();
  const own = strings.get(name) ?? [];
  return own.length ? own : (strings.get("any") ?? ["x"]);
}

/** Tokens that matter to one analyzer's parser, from its own corpus and shared specials. */
function tokensFrom(samples: readonly string[]): string[] {
  const tokens = new Set<string>([
    "..",
    "/",
    "%2e",
    "%2f",
    "%00",
    "\\",
    "@",
    ":",
    "//",
    "'",
    '"',
    ";",
    "|",
    "$(",
    "`",
    "--",
    "/*",
    "*/",
    "\n",
    "0x",
    "[::1]",
    "127.0.0.1",
    "169.254.169.254",
  ]);
  for (const sample of samples.slice(0, 400))
    for (const word of sample.split(/[\s/?#=&]+/)) if (word && word.length < 40) tokens.add(word);
  return [...tokens];
}

function kindTarget(kind: string): FuzzTarget {
  const constraint = CONSTRAINT_KINDS.get(kind)!;
  const written = (seeds().options.get(kind) ?? []).filter((o) => constraint.options.safeParse(o).success);
  const pool = written.length
    ? written
    : [{}, [], "", 0].filter((o) => constraint.options.safeParse(o).success);
  const samples = attackStrings(kind);
  const tokens = tokensFrom(samples);
  const compiled = new Map<number, ArgCheck | Error>();
  return {
    name: `kind:${kind}`,
    slowMs: 1000,
    generate(r) {
      const option = r.int(pool.length);
      const roll = r.next();
      const value =
        roll < 0.6 ? mutate(r, r.pick(samples), tokens, 4) : roll < 0.85 ? randomString(r) : randomValue(r);
      return { option, value };
    },
    run(input) {
      const { option, value } = input as { option: number; value: unknown };
      let check = compiled.get(option);
      if (check === undefined) {
        try {
          check = constraint.compile(constraint.options.parse(pool[option]));
        } catch (error) {
          check = error as Error; // a compile error is a load error, not a finding
        }
        compiled.set(option, check);
      }
      if (check instanceof Error) return;
      const out: Finding[] = [];
      check(value, "arg", out);
      checkFindings(out);
    },
  };
}

function detectorTarget(name: string): FuzzTarget {
  const detector = DETECTORS.get(name)!;
  const samples = attackStrings(name);
  const tokens = tokensFrom(samples);
  return {
    name: `detector:${name}`,
    slowMs: 1000,
    generate(r) {
      return r.chance(0.7) ? mutate(r, r.pick(samples), tokens, 4) : randomString(r, 200);
    },
    run(input) {
      const out: Finding[] = [];
      detector.scan(input as string, "arg", out);
      checkFindings(out);
    },
  };
}

function shadowTarget(): FuzzTarget {
  const names = [...new Set(seeds().policies.flatMap(({ policy }) => Object.keys(policy?.tools ?? {})))];
  const check = compileShadowCheck(names);
  const tokens = [
    "_",
    "-",
    ".",
    " ",
    "\u200b",
    "\u0430",
    "\u0435",
    "0",
    "1",
    "l",
    "I",
    "rn",
    "m",
    "\u0301",
    "\uff3f",
    "\u202e",
  ];
  return {
    name: "identity",
    slowMs: 1000,
    generate(r) {
      return r.chance(0.8)
        ? mutate(r, r.pick(names.length ? names : ["send_email"]), tokens, 3)
        : randomString(r, 30);
    },
    run(input) {
      const finding = check(input as string);
      if (finding) checkFindings([finding]);
    },
  };
}

/** Every target: the loader, each registered constraint kind and detector, and the look-alike check. */
export function fuzzTargets(): FuzzTarget[] {
  return [
    loaderTarget(),
    ...[...CONSTRAINT_KINDS.keys()].map(kindTarget),
    ...[...DETECTORS.keys()].map(detectorTarget),
    shadowTarget(),
  ];
}
