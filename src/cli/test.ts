import type { Call, Decision } from "../core/index.js";
import { Warden } from "../gateway/index.js";
import { compilePolicyFileAsync } from "../policy/index.js";
import type { CompiledPolicy, RawTest } from "../policy/index.js";
import { issueAtPath } from "../policy/source.js";
import { formatCoverage, mergeCoverage, policyCoverage } from "./coverage.js";
import type { FileCoverage } from "./coverage.js";
import { replayStep } from "./replay.js";
import { CliError, isPolicyError, parseFlags, printPolicyError } from "./util.js";
import type { Command } from "./util.js";
import { help } from "./validate.js";

export interface TestOutcome {
  name: string;
  where: string;
  ok: boolean;
  expected: string;
  got: Decision;
  /** The call the test decided (with its session). */
  call: Call;
}

/** Runs a policy's `tests:`; each test gets a fresh state (store, sessions). */
export async function runPolicyTests(policy: CompiledPolicy): Promise<TestOutcome[]> {
  const outcomes: TestOutcome[] = [];
  for (const [i, { test, origin }] of policy.tests.entries()) {
    const warden = new Warden(policy);
    const sessions = new Set<string>();
    const sessionId = test.call.session ?? `test-${i}`;
    for (const step of test.steps ?? []) await replayStep(warden, { ...step, session: sessionId }, sessions);
    const call = { ...test.call, session: sessionId };
    const got = await warden.decide(call);
    const where = issueAtPath(origin.source, origin.path, "");
    outcomes.push({
      name:
        test.name ??
        `${test.call.tool} -> ${typeof test.expect === "string" ? test.expect : test.expect.verdict}`,
      where: `${where.file}:${where.line}:${where.col}`,
      ok: matches(test.expect, got),
      expected: describe(test.expect),
      got,
      call,
    });
    await warden.close();
  }
  return outcomes;
}

function matches(expect: RawTest["expect"], got: Decision): boolean {
  if (typeof expect === "string") return got.verdict === expect;
  if (got.verdict !== expect.verdict) return false;
  if (expect.rule !== undefined && got.rule !== expect.rule) return false;
  if (expect.findings) {
    const codes = new Set(got.findings.map((f) => f.code));
    if (!expect.findings.every((code) => codes.has(code))) return false;
  }
  return true;
}

function describe(expect: RawTest["expect"]): string {
  if (typeof expect === "string") return expect;
  const parts: string[] = [expect.verdict];
  if (expect.rule !== undefined) parts.push(`rule ${expect.rule}`);
  if (expect.findings) parts.push(`findings ${expect.findings.join(",")}`);
  return parts.join(", ");
}

export const test: Command = {
  summary: "run the policies' tests: exit 1 on a failure (or, with --min-coverage, too little coverage)",
  usage: "toolwarden test POLICY... [--json] [--coverage] [--min-coverage N]",
  options: [
    "POLICY...               policy files whose `tests:` to run",
    "--json                  one JSON report instead of text",
    "--coverage              which rules, constraints and limits the tests exercise",
    "--min-coverage N        exit 1 when coverage is below N percent",
  ],
  async run(argv) {
    const { values, positionals } = parseFlags(
      argv,
      { json: { type: "boolean" }, coverage: { type: "boolean" }, "min-coverage": { type: "string" } },
      this.usage,
    );
    if (values.help) return help(this);
    if (!positionals.length) throw new CliError(`no policy given\nusage: ${this.usage}`);
    const minText = values["min-coverage"];
    const min = minText === undefined ? undefined : Number(minText);
    if (min !== undefined && (!/^\d+(\.\d+)?$/.test(minText ?? "") || min > 100))
      throw new CliError(`--min-coverage takes a percentage from 0 to 100, not \`${minText}\``);
    const withCoverage = values.coverage || min !== undefined;
    let passed = 0;
    let failed = 0;
    const all: Array<TestOutcome & { policy: string }> = [];
    const coverage: FileCoverage[] = [];
    for (const file of positionals) {
      let policy: CompiledPolicy;
      try {
        policy = await compilePolicyFileAsync(file);
      } catch (error) {
        if (!isPolicyError(error)) throw error;
        printPolicyError(error);
        failed++;
        continue;
      }
      const outcomes = await runPolicyTests(policy);
      if (withCoverage) {
        // A file a second policy also extends is reported once, with what either policy's tests exercised.
        for (const file of policyCoverage(policy, outcomes)) {
          const seen = coverage.find((c) => c.file === file.file);
          if (!seen) coverage.push(file);
          else mergeCoverage(seen, file);
        }
      }
      for (const outcome of outcomes) {
        all.push({ ...outcome, policy: file });
        if (outcome.ok) passed++;
        else failed++;
        if (values.json) continue;
        if (outcome.ok) process.stdout.write(`  ok    ${outcome.name}\n`);
        else {
          process.stdout.write(`  FAIL  ${outcome.name} (${outcome.where})\n`);
          process.stdout.write(
            `        expected ${outcome.expected}; got ${outcome.got.verdict} by ${outcome.got.rule ?? "default"}: ${outcome.got.reason}\n`,
          );
        }
      }
    }
    const short = min === undefined ? [] : coverage.filter((file) => file.percent < min);
    if (values.json) {
      const out: Record<string, unknown> = { passed, failed, tests: all };
      if (withCoverage) out.coverage = coverage;
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    } else {
      process.stdout.write(`${passed} passed, ${failed} failed\n`);
      if (withCoverage) process.stdout.write(`${formatCoverage(coverage)}\n`);
      for (const file of short)
        process.stdout.write(
          `coverage of ${file.file} is ${file.percent.toFixed(1)}%, under --min-coverage ${min}\n`,
        );
    }
    return failed || short.length ? 1 : 0;
  },
};
