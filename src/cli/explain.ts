import { compilePolicyFile, explainPolicy } from "../policy/index.js";
import { diffPolicies } from "../policy-tools/index.js";
import { CliError, parseFlags } from "./util.js";
import type { Command } from "./util.js";
import { help } from "./validate.js";

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
