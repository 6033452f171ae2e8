import { chooseScenarios, formatNs, onBenchResult, scenarioNames } from "../bench/harness.js";
import type { BenchResult } from "../bench/harness.js";
import { coreScenarios } from "../bench/scenarios.js";
import { CliError, parseFlags, table } from "./util.js";
import type { Command } from "./util.js";
import { help } from "./validate.js";

/** Adds each result's ratio to the raw call of the same kind (sync or awaited) measured in this run. */
export function withRatios(results: BenchResult[]): Array<BenchResult & { overheadNs?: number }> {
  const rawSync = results.find((r) => r.name.startsWith("raw function call (sync)"))?.medianNs;
  const rawAsync = results.find((r) => r.name.startsWith("raw function call (async"))?.medianNs;
  return results.map((r) => {
    const awaited = r.name.startsWith("wrapped") || r.name.includes("async") || r.name.includes("decide");
    const base = awaited ? rawAsync : rawSync;
    if (!base) return r;
    return { ...r, ratio: r.medianNs / base, overheadNs: awaited ? r.medianNs - base : undefined };
  });
}

export const bench: Command = {
  summary: "measure decision cost against a raw function call in the same run",
  usage: "toolwarden bench [--json] [--only core|analyzers|taint|audit|sessions|cedar] [--scenario NAME]",
  options: [
    "--json                  results as JSON (with node version, platform, cores)",
    "--only SET              run one scenario set: core, analyzers, taint, audit, sessions or cedar",
    '--scenario NAME         run only the scenarios whose name contains NAME (case-insensitive), e.g.',
    '                        --scenario "flow scan"; the raw calls (and a set\'s baseline) are measured',
    "                        too, for the ratios; repeat it for several",
  ],
  async run(argv) {
    const { values } = parseFlags(
      argv,
      { json: { type: "boolean" }, only: { type: "string" }, scenario: { type: "string", multiple: true } },
      this.usage,
    );
    if (values.help) return help(this);
    const wanted = (values.scenario ?? []).map((name) => name.toLowerCase());
    const choose = wanted.length
      ? (name: string) =>
          name.startsWith("raw function call") || wanted.some((part) => name.toLowerCase().includes(part))
      : undefined;
    const results: BenchResult[] = [];
    const sets: Array<[string, () => Promise<BenchResult[]>]> = [
      ["core", coreScenarios],
      ["analyzers", async () => (await import("../bench/analyzers.js")).analyzerScenarios()],
      ["taint", async () => (await import("../bench/taint.js")).flowScenarios()],
      ["audit", async () => (await import("../bench/audit.js")).auditScenarios()],
      ["sessions", async () => (await import("../bench/sessions.js")).sessionScenarios()],
      ["cedar", async () => (await import("../cedar/bench.js")).cedarScenarios()],
    ];
    if (values.only && !sets.some(([name]) => name === values.only))
      throw new CliError(
        `--only \`${values.only}\` is not a scenario set; sets: ${sets.map(([name]) => name).join(", ")}`,
      );
    // Progress on stderr: each set as it starts, each scenario as it is measured.
    // A chosen scenario's ratio needs the raw calls of the core set, measured in the same run.
    const chosen = sets.filter(([name]) => !values.only || values.only === name || (choose && name === "core"));
    let done = 0;
    onBenchResult((result) => {
      done++;
      process.stderr.write(`bench:   ${result.name}: ${formatNs(result.medianNs)} (${done} measured)\n`);
    });
    chooseScenarios(choose);
    try {
      for (const [i, [name, run]] of chosen.entries()) {
        process.stderr.write(`bench: ${name} (set ${i + 1} of ${chosen.length})…\n`);
        results.push(...(await run()).filter((result) => !result.skipped));
      }
    } finally {
      onBenchResult(undefined);
    }
    const names = scenarioNames();
    chooseScenarios(undefined);
    if (choose && !results.some((r) => !r.name.startsWith("raw function call") && choose(r.name)))
      throw new CliError(
        `--scenario ${values.scenario?.map((n) => `\`${n}\``).join(", ")} matched no scenario${values.only ? ` in set \`${values.only}\`` : ""}; scenarios:\n${names.map((n) => `  ${n}`).join("\n")}`,
      );
    const rows = withRatios(results);
    const meta = {
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      cpus: (await import("node:os")).cpus().length,
    };
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ ...meta, results: rows }, null, 2)}\n`);
      return 0;
    }
    process.stdout.write(
      `${table(
        ["scenario", "median", "p99 (batch)", "ops/s", "× raw call", "overhead"],
        rows.map((r) => [
          r.name,
          formatNs(r.medianNs),
          formatNs(r.p99Ns),
          Math.round(r.opsPerSec).toLocaleString("en-US"),
          r.ratio === undefined ? "-" : `${r.ratio.toFixed(1)}×`,
          r.overheadNs === undefined ? "-" : formatNs(r.overheadNs),
        ]),
      )}\n${rows
        .filter((r) => r.note)
        .map((r) => `\n${r.name}: ${r.note}`)
        .join(
          "",
        )}\n\n${meta.node} on ${meta.platform}, ${meta.cpus} cores. Sync scenarios compare with the sync raw call, awaited ones with the awaited raw call.\n`,
    );
    return 0;
  },
};
