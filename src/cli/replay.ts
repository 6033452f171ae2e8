import type { Call, Decision } from "../core/index.js";
import { mayRun } from "../core/index.js";
import type { SessionReport, Warden } from "../gateway/index.js";
import { jsonLines, lineError } from "./check.js";
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

/**
 * One trace line: `{session?, input, labels}` records labelled input; `{session?, task}` sets what
 * the user asked for (`session.task` in `expr`); `{session?, tool, args, result?}` is decided, and
 * an allowed step's result becomes that tool's output.
 */
export async function replayStep(
  warden: Warden,
  step: unknown,
  sessions: Set<string>,
): Promise<Decision | { recorded: true }> {
  if (step === null || typeof step !== "object" || Array.isArray(step))
    return lineError("a step is a JSON object");
  const { session: sessionId = "default", result, input, labels, ...call } = step as Record<string, unknown>;
  if (typeof sessionId !== "string") return lineError("`session` must be a string");
  sessions.add(sessionId);
  const session = warden.session({ id: sessionId, agent: call.agent as Call["agent"] });
  if ("input" in (step as object)) {
    if (!Array.isArray(labels) || !labels.every((l) => typeof l === "string")) {
      return lineError("an input line needs `labels`: a list of strings");
    }
    session.input(input, { labels });
    return { recorded: true };
  }
  if ("task" in call && !("tool" in call)) {
    if (typeof call.task !== "string") return lineError("`task` must be a string");
    session.task = call.task;
    return { recorded: true };
  }
  const full = { ...call, session: sessionId, labels: labels as Call["labels"] } as Call;
  if (full.labels === undefined) delete full.labels;
  const decision = await warden.decide(full);
  if (mayRun(decision)) {
    if (result !== undefined) warden.recordOutput(full, result, session);
    else warden.recordCall(full, session);
  }
  return decision;
}

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
