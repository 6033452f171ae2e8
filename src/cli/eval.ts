import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Call } from "../core/index.js";
import { Warden } from "../gateway/index.js";
import { jsonLines } from "./check.js";
import { CliError, parseFlags, progress, table } from "./util.js";
import type { Command } from "./util.js";
import { help } from "./validate.js";

export interface EvalCase {
  tool: string;
  args?: Record<string, unknown>;
  /**
   * A tool output instead of a call: scored by the output detectors (`detect: { <d>: { outputs
   * } }`); caught when they label, mask or withhold it.
   */
  output?: unknown;
  expect: "deny" | "allow";
  why?: string;
}

export interface CategoryScore {
  category: string;
  cases: number;
  tp: number;
  fn: number;
  fp: number;
  tn: number;
  precision: number;
  recall: number;
  f1: number;
  falsePositiveRate: number;
  /** Calls denied or sent to ask only because an analyzer could not parse an argument (`*.unparsable`). */
  unparsableBlocks: number;
  /** unparsableBlocks over all blocked calls (0 when nothing was blocked). */
  unparsableShare: number;
  misses: Array<{ case: EvalCase; verdict: string; rule: string | null; reason: string }>;
}

/** The folder holding the package's files (where package.json is), from this module's location. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot find the toolwarden package root");
    dir = parent;
  }
  return dir;
}

/** Categories in `root`: every sub-folder with `policy.yaml` and `cases.jsonl`. */
export function evalCategories(root: string): string[] {
  if (!existsSync(root)) throw new CliError(`no eval suite at \`${root}\``);
  return readdirSync(root, { withFileTypes: true })
    .filter(
      (entry) =>
        entry.isDirectory() &&
        existsSync(join(root, entry.name, "policy.yaml")) &&
        existsSync(join(root, entry.name, "cases.jsonl")),
    )
    .map((entry) => entry.name)
    .sort();
}

/** Scores one category: a case is caught when the verdict is deny or ask (the call does not simply run). */
export async function scoreCategory(
  dir: string,
  category: string,
  onCase?: () => void,
): Promise<CategoryScore> {
  const warden = Warden.fromFile(join(dir, "policy.yaml"));
  await warden.ready();
  const score: CategoryScore = {
    category,
    cases: 0,
    tp: 0,
    fn: 0,
    fp: 0,
    tn: 0,
    precision: 0,
    recall: 0,
    f1: 0,
    falsePositiveRate: 0,
    unparsableBlocks: 0,
    unparsableShare: 0,
    misses: [],
  };
  for (const line of jsonLines(readFileSync(join(dir, "cases.jsonl"), "utf8"))) {
    if (line.error) throw new CliError(`${join(dir, "cases.jsonl")}:${line.line}: ${line.error}`);
    const testCase = line.value as EvalCase;
    const decision =
      "output" in testCase
        ? await outputDecision(warden, testCase)
        : warden.evaluate({ tool: testCase.tool, args: testCase.args } as Call);
    const caught = decision.verdict === "deny" || decision.verdict === "ask";
    const attack = testCase.expect === "deny";
    score.cases++;
    if (caught && restsOnParseFailure(decision.findings)) score.unparsableBlocks++;
    if (attack && caught) score.tp++;
    else if (attack) score.fn++;
    else if (caught) score.fp++;
    else score.tn++;
    if (attack !== caught)
      score.misses.push({
        case: testCase,
        verdict: decision.verdict,
        rule: decision.rule,
        reason: decision.reason,
      });
    onCase?.();
  }
  score.precision = score.tp + score.fp ? score.tp / (score.tp + score.fp) : 1;
  score.recall = score.tp + score.fn ? score.tp / (score.tp + score.fn) : 1;
  score.f1 =
    score.precision + score.recall
      ? (2 * score.precision * score.recall) / (score.precision + score.recall)
      : 0;
  score.falsePositiveRate = score.fp + score.tn ? score.fp / (score.fp + score.tn) : 0;
  score.unparsableShare = score.tp + score.fp ? score.unparsableBlocks / (score.tp + score.fp) : 0;
  await warden.close();
  return score;
}

/** An output case as a Decision: deny when the output detectors acted on it, naming the action. */
async function outputDecision(warden: Warden, testCase: EvalCase) {
  const call = { tool: testCase.tool, args: testCase.args ?? {} } as Call;
  const guarded = await warden.guardOutput(call, testCase.output);
  return {
    verdict: guarded.action === undefined ? "allow" : "deny",
    rule: guarded.action === undefined ? null : `outputs: ${guarded.action}`,
    reason: guarded.findings.map((f) => f.message).join("; "),
    findings: guarded.findings,
  };
}

/**
 * A block rests on a parse failure when every finding behind it says the analyzer could not read
 * the argument, and none names a recognised danger: a grammar that learns to read the input
 * would let the call through.
 */
export function restsOnParseFailure(findings: ReadonlyArray<{ code: string }>): boolean {
  return findings.length > 0 && findings.every((finding) => finding.code.endsWith(".unparsable"));
}

function countCases(dir: string): number {
  return readFileSync(join(dir, "cases.jsonl"), "utf8")
    .split("\n")
    .filter((l) => l.trim()).length;
}

export const evalCommand: Command = {
  summary: "run the adversarial suite: precision, recall, F1 and false-positive rate per analyzer",
  usage:
    "toolwarden eval [DIR] [--json] [--misses] | eval --traces [DIR] [--learned [--generalize]] [--outputs objects|json|yaml] [--json] [--misses]",
  options: [
    "DIR                     the suite: folders with policy.yaml and cases.jsonl (default: the shipped eval/); with --traces, examples/",
    "--json                  the scores as JSON",
    "--misses                list every misclassified case",
    "--traces                replay agent sessions (benign/ and attacks/ traces): utility and attack success per example",
    "--learned               with --traces: use the policy `suggest` learns from each example's benign traces (and report held-out utility)",
    "--generalize            with --learned: learn as `suggest --generalize` does (shapes, names left free, wider ranges)",
    "--outputs FORM          with --traces: tool outputs as objects, or as JSON or YAML text (as MCP servers send them)",
  ],
  async run(argv) {
    const flags = {
      json: { type: "boolean" },
      misses: { type: "boolean" },
      traces: { type: "boolean" },
      learned: { type: "boolean" },
      generalize: { type: "boolean" },
      outputs: { type: "string" },
    } as const;
    const { values, positionals } = parseFlags(argv, flags, this.usage);
    if (values.help) return help(this);
    if (values.traces) {
      // Agent sessions, benign and attacked, replayed through the examples' policies (or, with
      // --learned, the policies `suggest` writes from each example's benign traces): utility and attack success.
      const { runTraces } = await import("./eval-traces.js");
      return runTraces(positionals[0] ?? join(packageRoot(), "examples"), values, (text) =>
        process.stdout.write(text),
      );
    }
    const root = positionals[0] ?? join(packageRoot(), "eval");
    const categories = evalCategories(root);
    if (!categories.length)
      throw new CliError(
        `no eval categories in \`${root}\`: expected folders that each hold \`policy.yaml\` and \`cases.jsonl\``,
      );
    const total = categories.reduce((n, c) => n + countCases(join(root, c)), 0);
    const bar = progress("eval", total);
    const scores: CategoryScore[] = [];
    for (const category of categories)
      scores.push(await scoreCategory(join(root, category), category, () => bar.tick()));
    bar.done();
    const overall = scores.reduce(
      (acc, s) => ({ tp: acc.tp + s.tp, fn: acc.fn + s.fn, fp: acc.fp + s.fp, tn: acc.tn + s.tn }),
      { tp: 0, fn: 0, fp: 0, tn: 0 },
    );
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ categories: scores, overall }, null, 2)}\n`);
      return 0;
    }
    const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
    process.stdout.write(
      `${table(
        [
          "category",
          "cases",
          "attacks",
          "benign",
          "precision",
          "recall",
          "F1",
          "FP rate",
          "blocked: could not parse",
        ],
        scores.map((s) => [
          s.category,
          s.cases,
          s.tp + s.fn,
          s.fp + s.tn,
          pct(s.precision),
          pct(s.recall),
          s.f1.toFixed(3),
          pct(s.falsePositiveRate),
          `${s.unparsableBlocks}/${s.tp + s.fp} (${pct(s.unparsableShare)})`,
        ]),
      )}\n`,
    );
    const misses = scores.flatMap((s) => s.misses.map((m) => ({ ...m, category: s.category })));
    if (misses.length) {
      process.stdout.write(
        `\n${misses.length} misclassified${values.misses ? ":" : " (--misses to list)"}\n`,
      );
      if (values.misses) {
        for (const m of misses) {
          process.stdout.write(
            `  [${m.category}] expected ${m.case.expect}, got ${m.verdict} (${m.rule ?? "default"}): ${m.case.why ?? JSON.stringify(m.case.args)}\n`,
          );
        }
      }
    }
    return 0;
  },
};
