import type { SessionReport } from "../gateway/index.js";
import { lineError, replayStep } from "../policy-tools/index.js";
import { jsonLines } from "./check.js";
import { DECIDE_FLAGS, DECIDE_OPTIONS, openWarden } from "./open.js";
import { CliError, parseFlags, readInput, table } from "./util.js";
import type { Command } from "./util.js";
import { help } from "./validate.js";

export const replay: Command = {
  summary: "replay a trace: one session per id; allowed results label later calls; one Decision a line",
  usage:
    "toolwarden replay -p POLICY TRACE.jsonl [--report] [--audit LOG [--audit-key-file FILE]] [--store URL]",
  options: [
    "TRACE.jsonl             steps `{session?, tool, args, result?}` or inputs `{session?, input, labels}` (`-`: stdin)",
    "--report                print each session's report (verdicts, spend, labels, flows blocked) on stderr",
    ...DECIDE_OPTIONS,
  ],
  async run(argv) {
    const { values, positionals } = parseFlags(
      argv,
      { ...DECIDE_FLAGS, report: { type: "boolean" } },
      this.usage,
    );
    if (values.help) return help(this);
    if (!positionals[0]) throw new CliError(`no trace given\nusage: ${this.usage}`);
    const warden = await openWarden(values);
    try {
      const sessions = new Set<string>();
      for (const line of jsonLines(readInput(positionals[0]))) {
        const out = line.error ? lineError(line.error) : await replayStep(warden, line.value, sessions);
        process.stdout.write(`${JSON.stringify(out)}\n`);
      }
      if (values.report) {
        const reports = [...sessions].map((id) => warden.report(id)).filter((r): r is SessionReport => !!r);
        process.stderr.write(`\n${formatReports(reports)}\n`);
      }
      return 0;
    } finally {
      await warden.close();
    }
  },
};

export function formatReports(reports: SessionReport[]): string {
  const rows = reports.map((r) => [
    r.session,
    r.calls,
    r.verdicts.allow,
    r.verdicts.flag,
    r.verdicts.ask,
    r.verdicts.deny,
    r.spend ? r.spend.toFixed(2) : "-",
    r.budget ? r.budget.remaining.toFixed(2) : "-",
    r.labelsSeen.join(",") || "-",
    r.flowsBlocked.length,
    r.deniedTools.join(",") || "-",
  ]);
  return table(
    [
      "session",
      "calls",
      "allow",
      "flag",
      "ask",
      "deny",
      "spend",
      "left",
      "labels seen",
      "flows blocked",
      "denied tools",
    ],
    rows,
  );
}
