import type { Call, Decision } from "../core/index.js";
import type { Warden } from "../gateway/index.js";
import { lineError } from "../policy-tools/index.js";
import { DECIDE_FLAGS, DECIDE_OPTIONS, openWarden } from "./open.js";
import { CliError, parseFlags, readInput } from "./util.js";
import type { Command } from "./util.js";
import { help } from "./validate.js";

export const check: Command = {
  summary: "decide calls: one Decision as JSON, or one per input line with --jsonl",
  usage:
    "toolwarden check -p POLICY [CALL.json | -] [--exit-code] | check -p POLICY --jsonl CALLS.jsonl [--exit-code] [--audit LOG]",
  options: [
    "CALL.json               one call `{tool, args, ...}` (`-` or nothing: stdin)",
    "--jsonl FILE            one call per line (`-`: stdin); one Decision per line, same order",
    "--exit-code             exit 1 on a deny, 3 on an ask (the most severe line with --jsonl), 0 otherwise",
    ...DECIDE_OPTIONS,
  ],
  async run(argv) {
    const { values, positionals } = parseFlags(
      argv,
      { ...DECIDE_FLAGS, jsonl: { type: "string" }, "exit-code": { type: "boolean" } },
      this.usage,
    );
    if (values.help) return help(this);
    const warden = await openWarden(values);
    try {
      const exit = exitCodeFor(values["exit-code"] === true);
      if (values.jsonl !== undefined) {
        for (const line of jsonLines(readInput(values.jsonl))) {
          const decision = line.error ? lineError(line.error) : await warden.decide(line.value as Call);
          process.stdout.write(`${JSON.stringify(decision)}\n`);
          exit.see(decision);
        }
        return exit.code;
      }
      const input = positionals[0] ?? "-";
      let call: unknown;
      try {
        call = JSON.parse(readInput(input));
      } catch (error) {
        if (error instanceof CliError) throw error;
        throw new CliError(`\`${input}\` is not JSON: ${(error as Error).message}`);
      }
      const decision = await warden.decide(call as Call);
      process.stdout.write(`${JSON.stringify(decision, null, 2)}\n`);
      exit.see(decision);
      return exit.code;
    } finally {
      await warden.close();
    }
  },
};

/** `--exit-code`: 1 when any decision denies, else 3 when any asks, else 0; always 0 without the flag. */
function exitCodeFor(enabled: boolean) {
  let code = 0;
  return {
    see(decision: Decision) {
      if (!enabled) return;
      if (decision.verdict === "deny") code = 1;
      else if (decision.verdict === "ask" && code === 0) code = 3;
    },
    get code() {
      return code;
    },
  };
}

/** The lines of a JSONL text, each parsed or with the reason it could not be; blank lines skipped. */
export function* jsonLines(text: string): Generator<{ line: number; value?: unknown; error?: string }> {
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].trim();
    if (!raw) continue;
    try {
      yield { line: i + 1, value: JSON.parse(raw) };
    } catch (error) {
      yield { line: i + 1, error: `line ${i + 1} is not JSON: ${(error as Error).message}` };
    }
  }
}

export type { Warden };
