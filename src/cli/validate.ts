import { compilePolicyFile } from "../policy/index.js";
import { CliError, isPolicyError, parseFlags, plural, printPolicyError } from "./util.js";
import type { Command } from "./util.js";

export const validate: Command = {
  summary: "check policies; errors as file:line:col",
  usage: "toolwarden validate POLICY... [--quiet]",
  options: [
    "POLICY...               policy files (YAML or JSON); every error of each is reported, as file:line:col",
    "-q, --quiet             print only errors",
  ],
  async run(argv) {
    const { values, positionals } = parseFlags(argv, { quiet: { type: "boolean", short: "q" } }, this.usage);
    if (values.help) return help(this);
    if (!positionals.length) throw new CliError(`no policy given\nusage: ${this.usage}`);
    let failed = 0;
    for (const file of positionals) {
      try {
        const policy = compilePolicyFile(file);
        for (const warning of policy.warnings) {
          process.stderr.write(
            `${warning.file}:${warning.line}:${warning.col}: warning: ${warning.message}\n`,
          );
          if (warning.frame) process.stderr.write(`${warning.frame}\n`);
          if (warning.help) process.stderr.write(`     = help: ${warning.help}\n`);
        }
        if (!values.quiet) {
          const rules = policy.loaded.policy.rules?.length ?? 0;
          process.stdout.write(
            `${file}: valid (${plural(policy.tools.size, "tool")}, ${plural(rules, "rule")}, ${plural(policy.limits.length, "limit")})\n`,
          );
        }
      } catch (error) {
        if (!isPolicyError(error)) throw error;
        printPolicyError(error);
        failed++;
      }
    }
    return failed ? 1 : 0;
  },
};

export function help(command: { summary: string; usage: string; options?: readonly string[] }): number {
  const options = command.options?.length ? `\noptions:\n${command.options.map((line) => `  ${line}`).join("\n")}\n` : "";
  process.stdout.write(`${command.usage}\n\n${command.summary}\n${options}`);
  return 0;
}
