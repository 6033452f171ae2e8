import { Warden } from "../gateway/index.js";
import { compilePolicyFile } from "../policy/index.js";
import type { CompiledPolicy, RawPolicy } from "../policy/index.js";
import { CliError, parseFlags } from "./util.js";
import type { Command } from "./util.js";
import { help } from "./validate.js";

/** A readable account of what a policy does. */
export function explainPolicy(policy: CompiledPolicy): string {
  const raw = policy.loaded.policy;
  const out: string[] = [];
  out.push(`policy ${policy.name} (sha256 ${policy.hash.slice(0, 12)})`);
  out.push(`  files: ${policy.loaded.sources.map((s) => s.file).join(", ")}`);
  out.push(
    `  when nothing matches: ${policy.defaultVerdict}; on an internal error: ${policy.failOpen ? "allow, flagged (fail: open)" : "deny (fail: closed)"}`,
  );
  out.push("  verdicts combine as deny > ask > flag > allow; every match counts, order never matters");
  for (const verdict of ["deny", "ask", "flag", "allow"] as const) {
    const globs = raw[verdict] ?? [];
    if (globs.length) out.push(`  ${verdict.padEnd(5)} tools: ${globs.join(", ")}`);
  }
  if (policy.tools.size) out.push("", "tools:");
  for (const tool of policy.tools.values()) {
    const traits = [
      tool.produces.length ? `produces ${tool.produces.join(", ")}` : "",
      tool.sink ? `sink ${tool.sink}` : "",
      tool.risk ? `risk ${tool.risk}` : "",
      tool.cost !== undefined ? `cost ${tool.cost}` : "",
      tool.propagates ? "propagates the labels that flow into it" : "",
      tool.declassifies.length ? `declassifies ${tool.declassifies.join(", ")}` : "",
      policy.valueSetTools.has(tool.name) ? "a trusted value set for `from` (its parts with no label)" : "",
    ].filter(Boolean);
    out.push(`  ${tool.name}${traits.length ? ` (${traits.join("; ")})` : ""}`);
    if (tool.fields.length) {
      const raw = Object.entries(policy.loaded.policy.tools?.[tool.name]?.fields ?? {});
      out.push(`    fields: ${raw.map(([path, labels]) => `${path} -> ${labels.length ? labels.join(", ") : "no label"}`).join("; ")}`);
      const all = [...new Set([...tool.produces, ...tool.fields.flatMap((f) => f.labels)])].filter(
        (label) => !tool.declassifies.includes(label),
      );
      out.push(
        `    on objects and their JSON or YAML text; other text carries ${all.length ? all.join(", ") : "no label"}`,
      );
    }
    for (const [arg, spec] of Object.entries(raw.tools?.[tool.name]?.args ?? {})) {
      out.push(`    ${arg}: ${JSON.stringify(spec)} -> ${tool.onViolation} on violation`);
    }
    if (tool.detectors.length) out.push(`    detect: ${tool.detectors.map(describeDetector).join(", ")}`);
  }
  if (policy.detectors.length)
    out.push("", `detect in every argument: ${policy.detectors.map(describeDetector).join(", ")}`);
  if (raw.rules?.length) out.push("", "rules:");
  for (const rule of raw.rules ?? []) {
    out.push(
      `  ${rule.verdict.padEnd(5)} ${rule.name}: when ${JSON.stringify(rule.when ?? {})}${rule.message ? ` — ${rule.message}` : ""}`,
    );
  }
  if (policy.limits.length) out.push("", "limits:");
  for (const limit of policy.limits) out.push(`  ${limit.name}: ${limit.describe} -> ${limit.verdict}`);
  if (policy.budget) {
    const { max, askAbove, per } = policy.budget;
    out.push(
      "",
      `budget: ${max} per ${per}${askAbove !== undefined ? `; a call costing more than ${askAbove} asks` : ""}`,
    );
  }
  if (policy.tests.length) out.push("", `tests: ${policy.tests.length} (run with \`toolwarden test\`)`);
  if (policy.warnings.length) out.push("", "warnings:", ...policy.warnings.map((w) => `  ${w.line}:${w.col}: ${w.message}`));
  return out.join("\n");
}

/** What changed between two policies: declarations, rules, and the decisions on both policies' test calls. */
export async function diffPolicies(a: CompiledPolicy, b: CompiledPolicy): Promise<string[]> {
  const ra = a.loaded.policy;
  const rb = b.loaded.policy;
  const changes: string[] = [];
  for (const key of ["default", "fail", "budget", "detect", "labels", "audit"] as const) {
    if (JSON.stringify(ra[key]) !== JSON.stringify(rb[key]))
      changes.push(`~ ${key}: ${JSON.stringify(ra[key])} -> ${JSON.stringify(rb[key])}`);
  }
  for (const verdict of ["allow", "flag", "ask", "deny"] as const) {
    const before = new Set(ra[verdict] ?? []);
    const after = new Set(rb[verdict] ?? []);
    for (const glob of after) if (!before.has(glob)) changes.push(`+ ${verdict}: ${glob}`);
    for (const glob of before) if (!after.has(glob)) changes.push(`- ${verdict}: ${glob}`);
  }
  named(changes, "tool", ra.tools ?? {}, rb.tools ?? {});
  named(changes, "rule", byName(ra.rules), byName(rb.rules));
  named(changes, "limit", byName(ra.limits), byName(rb.limits));
  // A call both policies test is compared once.
  const calls = new Map([...a.tests, ...b.tests].map(({ test }) => [JSON.stringify(test.call), test.call]));
  for (const call of calls.values()) {
    const da = new Warden(a).evaluate(call);
    const db = new Warden(b).evaluate(call);
    if (da.verdict !== db.verdict) {
      changes.push(
        `! ${call.tool} ${JSON.stringify(call.args ?? {})}: ${da.verdict} (${da.rule ?? "default"}) -> ${db.verdict} (${db.rule ?? "default"})`,
      );
    }
  }
  return changes;
}

function byName<T extends { name: string }>(items: T[] | undefined): Record<string, T> {
  return Object.fromEntries((items ?? []).map((item) => [item.name, item]));
}

function named(
  changes: string[],
  what: string,
  before: Record<string, unknown>,
  after: Record<string, unknown>,
): void {
  for (const name of Object.keys(after)) {
    if (!(name in before)) changes.push(`+ ${what} ${name}: ${JSON.stringify(after[name])}`);
    else if (JSON.stringify(before[name]) !== JSON.stringify(after[name])) {
      changes.push(`~ ${what} ${name}: ${JSON.stringify(before[name])} -> ${JSON.stringify(after[name])}`);
    }
  }
  for (const name of Object.keys(before)) if (!(name in after)) changes.push(`- ${what} ${name}`);
}

export const explain: Command = {
  summary: "what a policy does (`explain POLICY`), or what changed between two (`explain diff A B`)",
  usage: "toolwarden explain POLICY | explain diff A B  (also: toolwarden diff A B)",
  options: [
    "POLICY                  the policy to describe: defaults, tools and their constraints, rules, limits, budget",
    "diff A B                what changed from A to B (see `toolwarden diff --help`)",
  ],
  async run(argv) {
    const { values, positionals } = parseFlags(argv, {}, this.usage);
    if (values.help) return help(this);
    if (positionals[0] === "diff") return diff.run(positionals.slice(1));
    if (positionals.length !== 1) throw new CliError(`expected one policy\nusage: ${this.usage}`);
    process.stdout.write(`${explainPolicy(compilePolicyFile(positionals[0]))}\n`);
    return 0;
  },
};

export const diff: Command = {
  summary:
    "what changed between two policies, including decisions on their test calls; exit 0 the same, 1 they differ, 2 an error (as diff(1))",
  usage: "toolwarden diff A B  (also: toolwarden explain diff A B)",
  options: [
    "A B                     two policy files; changed keys, declarations, rules, limits, and decisions on their test calls",
    "exit status             0 the same, 1 they differ, 2 an error",
  ],
  errorExitCode: 2,
  async run(argv) {
    const { values, positionals } = parseFlags(argv, {}, this.usage);
    if (values.help) return help(this);
    if (positionals.length !== 2) throw new CliError(`expected two policies\nusage: ${this.usage}`);
    const changes = await diffPolicies(compilePolicyFile(positionals[0]), compilePolicyFile(positionals[1]));
    process.stdout.write(changes.length ? `${changes.join("\n")}\n` : "no changes\n");
    return changes.length ? 1 : 0;
  },
};

export type { RawPolicy };

/** `secrets -> deny`, and what it does to outputs when it scans them: `secrets -> deny, outputs: mask`. */
function describeDetector(use: { detector: { name: string }; verdict: string; outputs?: string }): string {
  return `${use.detector.name} -> ${use.verdict}${use.outputs ? `, outputs: ${use.outputs}` : ""}`;
}
