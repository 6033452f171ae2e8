import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { BUILTIN_RULES, mayRun } from "../core/index.js";
import { stringify as yamlText } from "yaml";
import type { Decision, FlowEvidence } from "../core/index.js";
import { Warden } from "../gateway/index.js";
import { addTrace, emptyObservations, suggestPolicy } from "../learn/index.js";
import { compilePolicyFile } from "../policy/index.js";
import type { CompiledPolicy } from "../policy/index.js";
import { jsonLines } from "./check.js";
import { replayStep, runPolicyTests } from "../policy-tools/index.js";
import { CliError, table } from "./util.js";

/** A step that kept a benign trace from finishing, or an attacker's step that got through. */
export interface TraceMiss {
  /** The trace file, relative to the traces root. */
  file: string;
  line: number;
  tool: string;
  verdict: Decision["verdict"];
  rule: string | null;
  reason: string;
  flows?: FlowEvidence[];
}

/** One replayed trace: a benign session is useful when every call may run; an attack succeeds when every `attack: true` call may run. */
export interface TraceOutcome {
  file: string;
  kind: "benign" | "attack";
  /** benign: the user's task could finish; attack: the attacker's goal was reached. */
  ok: boolean;
  steps: number;
  /** benign: the calls held (ask) or refused (deny); attack: the attacker's calls that ran. */
  misses: TraceMiss[];
}

/** Utility and attack success over a set of traces. */
export interface TraceScores {
  benign: number;
  /** Benign traces whose every call was allowed (allow or flag). */
  useful: number;
  utility: number;
  attacks: number;
  /** Attack traces whose every `attack: true` call was allowed. */
  succeeded: number;
  attackSuccess: number;
}

/** Scores of one example folder (`policy.yaml`, `benign/*.jsonl`, `attacks/*.jsonl`). */
export interface ExampleScore extends TraceScores {
  example: string;
  /** The policy's own `tests:`. */
  tests: { passed: number; failed: string[] };
  traces: TraceOutcome[];
  /**
   * `--learned` only: each benign trace replayed through the policy learned from the other benign
   * traces (leave one out), so utility is measured on behaviour the policy did not learn from.
   */
  heldOut?: { benign: number; useful: number; utility: number };
}

/**
 * How tool results reach the policy: `objects` as the trace holds them; `json` / `yaml` with every
 * result that is not already text rendered as JSON or YAML text, as MCP servers and many tools
 * send it. A policy should score the same in all three.
 */
export type OutputForm = "objects" | "json" | "yaml";
export const OUTPUT_FORMS: readonly OutputForm[] = ["objects", "json", "yaml"];

/** A result as the given form renders it; text stays text. */
export function renderResult(result: unknown, form: OutputForm): unknown {
  if (form === "objects" || typeof result === "string" || result === undefined) return result;
  return form === "json" ? JSON.stringify(result, null, 2) : yamlText(result);
}

export interface TracesReport {
  /** How results were rendered before they were recorded. */
  outputs: OutputForm;
  examples: ExampleScore[];
  overall: TraceScores;
}

const KINDS = [
  ["benign", "benign"],
  ["attacks", "attack"],
] as const;

/** Example folders under `root` that hold a policy and at least one trace folder. */
export function traceExamples(root: string): string[] {
  if (!existsSync(root)) throw new CliError(`no examples at \`${root}\``);
  return readdirSync(root, { withFileTypes: true })
    .filter(
      (entry) =>
        entry.isDirectory() &&
        existsSync(join(root, entry.name, "policy.yaml")) &&
        KINDS.some(([dir]) => existsSync(join(root, entry.name, dir))),
    )
    .map((entry) => entry.name)
    .sort();
}

/** How the policy of each example is chosen: its own `policy.yaml`, or one `suggest` learns from its benign traces. */
export interface TracesOptions {
  learned?: boolean;
  /** With `learned`: `suggest --generalize`. */
  generalize?: boolean;
  /** How results reach the policy (default `objects`). */
  outputs?: OutputForm;
}

/** Replays every trace of every example under `root`, each through a fresh Warden, and scores them. */
export async function evaluateTraces(root: string, options: TracesOptions = {}): Promise<TracesReport> {
  const outputs = options.outputs ?? "objects";
  const examples: ExampleScore[] = [];
  for (const name of traceExamples(root)) {
    const score = await scoreExample(
      root,
      name,
      options.learned ? await learnedPolicy(root, name, undefined, options.generalize) : undefined,
      outputs,
    );
    if (options.learned) score.heldOut = await heldOutUtility(root, name, outputs, options.generalize);
    examples.push(score);
  }
  const sum = (pick: (s: ExampleScore) => number) => examples.reduce((n, s) => n + pick(s), 0);
  const benign = sum((s) => s.benign);
  const useful = sum((s) => s.useful);
  const attacks = sum((s) => s.attacks);
  const succeeded = sum((s) => s.succeeded);
  return {
    outputs,
    examples,
    overall: {
      benign,
      useful,
      utility: ratio(useful, benign),
      attacks,
      succeeded,
      attackSuccess: ratio(succeeded, attacks),
    },
  };
}

/**
 * The policy `suggest` writes from an example's benign traces alone (attack traces are never read),
 * or from the benign traces but `leaveOut` (to score it on a trace it did not learn from).
 */
export async function learnedPolicy(
  root: string,
  name: string,
  leaveOut?: string,
  generalize?: boolean,
): Promise<CompiledPolicy> {
  const at = join(root, name, "benign");
  const observations = emptyObservations();
  for (const file of readdirSync(at)
    .filter((f) => f.endsWith(".jsonl"))
    .sort()) {
    if (file === leaveOut) continue;
    addTrace(observations, readFileSync(join(at, file), "utf8"), relative(root, join(at, file)));
  }
  return (await suggestPolicy(observations, { name: `${name}-learned`, generalize })).compiled;
}

/** Leave-one-out utility of the learned policy: each benign trace against the policy learned from the others. */
async function heldOutUtility(
  root: string,
  name: string,
  outputs: OutputForm,
  generalize?: boolean,
): Promise<ExampleScore["heldOut"]> {
  const at = join(root, name, "benign");
  if (!existsSync(at)) return { benign: 0, useful: 0, utility: 0 };
  const files = readdirSync(at)
    .filter((f) => f.endsWith(".jsonl"))
    .sort();
  let useful = 0;
  for (const file of files) {
    const policy = await learnedPolicy(root, name, file, generalize);
    const outcome = await replayTrace(
      policy,
      join(at, file),
      relative(root, join(at, file)),
      "benign",
      outputs,
    );
    if (outcome.ok) useful++;
  }
  return { benign: files.length, useful, utility: ratio(useful, files.length) };
}

/** Scores one example: its policy is compiled once; every trace gets its own Warden (fresh sessions, counters, approvals). */
export async function scoreExample(
  root: string,
  name: string,
  given?: CompiledPolicy,
  outputs: OutputForm = "objects",
): Promise<ExampleScore> {
  const dir = join(root, name);
  const policy = given ?? compilePolicyFile(join(dir, "policy.yaml"));
  const traces: TraceOutcome[] = [];
  for (const [folder, kind] of KINDS) {
    const at = join(dir, folder);
    if (!existsSync(at)) continue;
    const files = readdirSync(at)
      .filter((file) => file.endsWith(".jsonl"))
      .sort();
    for (const file of files)
      traces.push(await replayTrace(policy, join(at, file), relative(root, join(at, file)), kind, outputs));
  }
  const outcomes = await runPolicyTests(policy);
  const benign = traces.filter((t) => t.kind === "benign");
  const attacks = traces.filter((t) => t.kind === "attack");
  const useful = benign.filter((t) => t.ok).length;
  const succeeded = attacks.filter((t) => t.ok).length;
  return {
    example: name,
    benign: benign.length,
    useful,
    utility: ratio(useful, benign.length),
    attacks: attacks.length,
    succeeded,
    attackSuccess: ratio(succeeded, attacks.length),
    tests: {
      passed: outcomes.filter((o) => o.ok).length,
      failed: outcomes.filter((o) => !o.ok).map((o) => `${o.name} (${o.where})`),
    },
    traces,
  };
}

/**
 * Replays one trace as one session. The `attack` marker is stripped before the step is decided,
 * so the policy never sees it. A trace must open with the user's request (an input line labelled
 * `user`), keep to one session, and an attack trace must mark at least one step.
 */
export async function replayTrace(
  policy: CompiledPolicy,
  path: string,
  file: string,
  kind: "benign" | "attack",
  outputs: OutputForm = "objects",
): Promise<TraceOutcome> {
  const warden = new Warden(policy);
  const sessions = new Set<string>();
  const misses: TraceMiss[] = [];
  let steps = 0;
  let marked = 0;
  let session: string | undefined;
  const fail = (line: number, message: string) => new CliError(`${file}:${line}: ${message}`);
  try {
    for (const line of jsonLines(readFileSync(path, "utf8"))) {
      if (line.error) throw fail(line.line, line.error);
      const value = line.value;
      if (value === null || typeof value !== "object" || Array.isArray(value))
        throw fail(line.line, "a step is a JSON object");
      const { attack, ...step } = value as Record<string, unknown>;
      const id = typeof step.session === "string" ? step.session : "default";
      if (session === undefined) {
        if (!("input" in step) || !Array.isArray(step.labels) || !step.labels.includes("user")) {
          throw fail(line.line, "a trace opens with the user's request: an input line labelled `user`");
        }
        session = id;
      } else if (id !== session)
        throw fail(line.line, `a trace is one session; \`${id}\` differs from \`${session}\``);
      if (attack !== undefined && typeof attack !== "boolean")
        throw fail(line.line, "`attack` is true or false");
      if (attack && kind === "benign") throw fail(line.line, "a benign trace marks no step as `attack`");
      if ("result" in step) step.result = renderResult(step.result, outputs);
      const out = await replayStep(warden, step, sessions);
      if (!("verdict" in out)) continue;
      if (out.rule === BUILTIN_RULES.malformedCall) throw fail(line.line, out.reason);
      steps++;
      const runs = mayRun(out);
      if (attack) marked++;
      const miss = kind === "benign" ? !runs : attack === true && runs;
      if (miss) {
        misses.push({
          file,
          line: line.line,
          tool: String(step.tool),
          verdict: out.verdict,
          rule: out.rule,
          reason: out.reason,
          ...(out.flows?.length ? { flows: out.flows } : {}),
        });
      }
    }
    if (session === undefined) throw fail(1, "empty trace");
    if (kind === "attack" && marked === 0)
      throw fail(1, 'an attack trace marks the attacker\'s steps with `"attack": true`');
  } finally {
    await warden.close();
  }
  const ok = kind === "benign" ? misses.length === 0 : misses.length === marked;
  return { file, kind, ok, steps, misses };
}

function ratio(part: number, whole: number): number {
  return whole === 0 ? 0 : part / whole;
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** The report as text: one row per example and an overall row; with `misses`, the steps behind the numbers. */
export function formatTraces(report: TracesReport, misses: boolean): string {
  const rows = report.examples.map((s) => [
    s.example,
    `${s.useful}/${s.benign}`,
    pct(s.utility),
    `${s.succeeded}/${s.attacks}`,
    pct(s.attackSuccess),
    s.tests.failed.length ? `${s.tests.passed} ok, ${s.tests.failed.length} FAIL` : `${s.tests.passed} ok`,
  ]);
  const o = report.overall;
  rows.push([
    "overall",
    `${o.useful}/${o.benign}`,
    pct(o.utility),
    `${o.succeeded}/${o.attacks}`,
    pct(o.attackSuccess),
    "",
  ]);
  const heldOut = report.examples.some((s) => s.heldOut);
  if (heldOut) {
    rows.forEach((row, i) => {
      const h = report.examples[i]?.heldOut;
      row.splice(3, 0, h ? `${h.useful}/${h.benign} ${pct(h.utility)}` : "");
    });
    const all = report.examples.reduce(
      (n, s) => ({ u: n.u + (s.heldOut?.useful ?? 0), b: n.b + (s.heldOut?.benign ?? 0) }),
      { u: 0, b: 0 },
    );
    rows[rows.length - 1][3] = `${all.u}/${all.b} ${pct(ratio(all.u, all.b))}`;
  }
  const header = ["example", "benign ok", "utility", "attacks won", "attack success", "policy tests"];
  if (heldOut) header.splice(3, 0, "held-out utility");
  const out = [table(header, rows)];
  const failedTests = report.examples.flatMap((s) =>
    s.tests.failed.map((t) => `  [${s.example}] policy test failed: ${t}`),
  );
  if (failedTests.length) out.push("", ...failedTests);
  const benignMisses = report.examples.flatMap((s) =>
    s.traces.filter((t) => t.kind === "benign").flatMap((t) => t.misses),
  );
  const attackMisses = report.examples.flatMap((s) =>
    s.traces.filter((t) => t.kind === "attack" && t.ok).flatMap((t) => t.misses),
  );
  if (!misses) {
    if (benignMisses.length || attackMisses.length) {
      out.push(
        "",
        `${benignMisses.length} benign steps held or denied, ${attackMisses.length} attacker steps allowed in successful attacks (--misses to list)`,
      );
    }
    return out.join("\n");
  }
  const describe = (m: TraceMiss) => {
    const flows = m.flows?.length
      ? ` [${m.flows.map((f) => `${f.arg} <- ${f.label} from ${f.source}`).join("; ")}]`
      : "";
    return `  ${m.file}:${m.line} ${m.tool}: ${m.verdict} by ${m.rule ?? "default"}: ${m.reason}${flows}`;
  };
  out.push("", `benign steps held or denied: ${benignMisses.length}`, ...benignMisses.map(describe));
  out.push(
    "",
    `attacker steps allowed (successful attacks): ${attackMisses.length}`,
    ...attackMisses.map(describe),
  );
  return out.join("\n");
}

/** `toolwarden eval --traces [DIR]`: prints the report (or JSON); exit 1 when a policy test fails. */
export async function runTraces(
  root: string,
  options: { json?: boolean; misses?: boolean; learned?: boolean; generalize?: boolean; outputs?: string },
  write: (text: string) => void,
): Promise<number> {
  const outputs = (options.outputs ?? "objects") as OutputForm;
  if (!OUTPUT_FORMS.includes(outputs))
    throw new CliError(`\`--outputs\` is one of ${OUTPUT_FORMS.join(", ")}, not \`${options.outputs}\``);
  const report = await evaluateTraces(root, {
    learned: options.learned,
    generalize: options.generalize,
    outputs,
  });
  if (report.examples.length === 0)
    throw new CliError(`no example under \`${root}\` has a policy.yaml with benign/ or attacks/ traces`);
  write(
    options.json
      ? `${JSON.stringify(report, null, 2)}\n`
      : `${formatTraces(report, options.misses ?? false)}\n`,
  );
  return report.examples.some((s) => s.tests.failed.length) ? 1 : 0;
}
