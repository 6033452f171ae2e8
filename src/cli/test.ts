import { isAbsolute, relative } from "node:path";
import { compilePolicyFileAsync } from "../policy/index.js";
import type { CompiledPolicy } from "../policy/index.js";
import { mergeCoverage, policyCoverage, runPolicyTests } from "../policy-tools/index.js";
import type { FileCoverage, TestOutcome } from "../policy-tools/index.js";
import { CliError, isPolicyError, parseFlags, printPolicyError } from "./util.js";
import type { Command } from "./util.js";
import { help } from "./validate.js";

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

/** Uncovered items as `file:line:col kind name`, and one summary line per file. */
function formatCoverage(files: readonly FileCoverage[]): string {
  const out: string[] = [];
  const shown = (file: string) => {
    const rel = relative(process.cwd(), file);
    return rel && !rel.startsWith("..") && !isAbsolute(rel) ? rel : file;
  };
  for (const file of files) {
    out.push(`coverage ${shown(file.file)}: ${file.covered}/${file.total} (${file.percent.toFixed(1)}%)`);
    for (const item of file.items.filter((i) => !i.covered))
      out.push(`  not exercised: ${shown(item.file)}:${item.line}:${item.col} ${item.kind} ${item.name}`);
  }
  return out.join("\n");
}
