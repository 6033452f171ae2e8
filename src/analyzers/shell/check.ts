import { forEachChild, parse, type SyntaxNode, type Word } from "unbash";
import type { Finding } from "../../core/index.js";
import { preview } from "../kind.js";
import { FindingList } from "../findings.js";
import { fileEffect } from "./file-writes.js";
import {
  EVAL_BUILTINS,
  execOption,
  findExecs,
  isDangerousVariable,
  runsDashC,
  unwrap,
  type Words,
} from "./programs.js";

/** What the policy allows beyond the listed programs. */
export interface ShellAllow {
  substitution: boolean;
  redirect_write: boolean;
  background: boolean;
  env_assign: boolean;
}

/** The `programs` allowlist: entries of one or more words, matched on parsed, unquoted words. */
export class ProgramList {
  private readonly byName = new Map<string, string[][]>();

  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      const words = entry.trim().split(/\s+/);
      const rest = this.byName.get(words[0]!) ?? [];
      rest.push(words.slice(1));
      this.byName.set(words[0]!, rest);
    }
  }

  /** True when some entry is a prefix of `words`. */
  allows(words: Words): boolean {
    const entries = this.byName.get(words[0] ?? "");
    return entries?.some((rest) => rest.every((word, i) => words[i + 1] === word)) ?? false;
  }

  /** True when an entry names `-c` for this shell (`"bash -c"`), so a shell string is accepted. */
  allowsDashC(program: string): boolean {
    return this.byName.get(program)?.some((rest) => rest.includes("-c")) ?? false;
  }

  /** How to name `words` in a message: with its subcommand when entries list subcommands. */
  describe(words: Words): string {
    const entries = this.byName.get(words[0] ?? "");
    const withSub = entries !== undefined && words[1] !== undefined && words[1] !== null;
    return preview(withSub ? `${words[0]} ${words[1]}` : (words[0] ?? ""));
  }
}

const WRITE_OPERATORS = new Set([">", ">>", ">|", "&>", "&>>", "<>"]);
const SAFE_SINKS = new Set(["/dev/null", "/dev/stdout", "/dev/stderr"]);
const MAX_WRAPPING = 8;

/** Parses `command` and pushes a finding per distinct problem. */
export function checkShell(
  command: string,
  programs: ProgramList,
  allow: ShellAllow,
  arg: string,
  out: Finding[],
) {
  new ShellWalk(programs, allow, arg, out).run(command);
}

class ShellWalk extends FindingList {
  constructor(
    private readonly programs: ProgramList,
    private readonly allow: ShellAllow,
    arg: string,
    out: Finding[],
  ) {
    super(arg, out);
  }

  run(command: string) {
    this.visit(parse(command));
  }

  private readonly visit = (node: SyntaxNode): void => {
    switch (node.type) {
      case "Script": {
        const error = "errors" in node ? node.errors?.[0] : undefined;
        if (error !== undefined) this.report("shell.unparsable", `${error.message} at offset ${error.pos}`);
        break;
      }
      case "Statement":
        if (node.background && !this.allow.background) {
          this.report("shell.background", "`&` runs a command in the background");
        }
        break;
      case "Coproc":
        if (!this.allow.background)
          this.report("shell.background", "`coproc` runs a command in the background");
        break;
      case "Command":
        this.command(node);
        break;
      case "CommandExpansion":
      case "ArithmeticCommandExpansion":
        if (!this.allow.substitution) {
          const form = node.text.startsWith("`") ? "backtick" : "`$(...)`";
          this.report("shell.substitution", `${form} command substitution runs another command`);
        }
        break;
      case "ProcessSubstitution":
        if (!this.allow.substitution) {
          this.report(
            "shell.substitution",
            `\`${node.operator}(...)\` process substitution runs another command`,
          );
        }
        break;
      case "Redirect":
        this.redirect(node.operator, node.target);
        break;
    }
    // Children include every word part, so substitutions nested anywhere are reached.
    forEachChild(node, this.visit);
  };

  private command(node: Extract<SyntaxNode, { type: "Command" }>) {
    for (const item of node.prefix) {
      if (item.type === "Assignment") this.assignment(item.name);
    }
    if (node.name === undefined) return;
    if (staticValue(node.name) === null) {
      this.report(
        "shell.dynamic_command",
        `program name \`${preview(node.name.text)}\` is computed at run time`,
      );
      return;
    }
    const words: Array<string | null> = [node.name.value];
    for (const item of node.suffix) {
      if (item.type === "Word") words.push(staticValue(item));
      else if (item.type === "Assignment") {
        // `export NAME=value`, `declare NAME=value`: the builtin sets a variable like a prefix would.
        this.assignment(item.name);
        words.push(item.value.type === "Word" && staticValue(item.value) !== null ? item.text : null);
      }
    }
    this.invocation(words, 0);
  }

  private invocation(words: Words, depth: number) {
    const program = words[0];
    if (program === null || program === undefined) {
      this.report("shell.dynamic_command", "the program a wrapper runs is computed at run time");
      return;
    }
    if (depth > MAX_WRAPPING) {
      this.report("shell.dynamic_command", "wrappers nested too deeply");
      return;
    }
    if (runsDashC(words) && !this.programs.allowsDashC(program)) {
      this.report("shell.eval", `\`${preview(program)} -c\` runs a string as a shell script`);
      return;
    }
    const listed = this.programs.allows(words);
    if (EVAL_BUILTINS.has(program)) {
      if (!listed) this.report("shell.eval", `\`${program}\` runs text as shell code`);
      return;
    }
    if (!listed) {
      this.report("shell.not_allowed", `\`${this.programs.describe(words)}\` is not an allowed program`);
      return;
    }
    const option = execOption(words);
    if (option === null) {
      this.report(
        "shell.dynamic_command",
        `\`${preview(program)}\` with a computed argument could be given an option that runs a command`,
      );
      return;
    }
    if (option !== undefined) {
      this.report("shell.eval", `\`${preview(program)} ${preview(option, 40)}\` can run another command`);
      return;
    }
    const effect = fileEffect(words);
    if (effect?.kind === "runs") {
      this.report("shell.eval", effect.what);
      return;
    }
    if (effect?.kind === "unknown") {
      this.report("shell.dynamic_command", effect.what);
      return;
    }
    if (effect?.kind === "writes" && !this.allow.redirect_write) this.report("shell.redirect", effect.what);
    const wrapped = unwrap(words);
    if (wrapped !== undefined) {
      if (wrapped.kind === "eval") {
        this.report("shell.eval", `\`${program} ${preview(wrapped.option, 40)}\` runs a shell`);
      } else if (wrapped.kind === "unknown") {
        this.report("shell.dynamic_command", `cannot tell what \`${program}\` runs (${wrapped.why})`);
      } else if (wrapped.kind === "command") {
        for (const name of wrapped.assignments) this.assignment(name);
        this.invocation(wrapped.words, depth + 1);
      }
      return;
    }
    if (program === "find") {
      for (const run of findExecs(words)) {
        if (run.length > 0) this.invocation(run, depth + 1);
      }
    }
  }

  private assignment(name: string) {
    if (isDangerousVariable(name)) {
      this.report("shell.env_assign", `setting \`${preview(name)}\` can make programs run other code`);
    } else if (!this.allow.env_assign) {
      this.report("shell.env_assign", `\`${preview(name)}=\` sets a variable`);
    }
  }

  private redirect(operator: string, target: Word | undefined) {
    const value = target === undefined ? null : staticValue(target);
    if (value !== null && /^\/dev\/(tcp|udp)\//.test(value)) {
      this.report("shell.redirect", "redirection to `/dev/tcp` or `/dev/udp` opens a network connection");
      return;
    }
    const writes =
      WRITE_OPERATORS.has(operator) || (operator === ">&" && (value === null || !/^(\d+|-)$/.test(value)));
    if (!writes || this.allow.redirect_write || (value !== null && SAFE_SINKS.has(value))) return;
    const shown = value === null ? preview(target?.text ?? "") : preview(value);
    this.report("shell.redirect", `\`${operator} ${shown}\` writes a file`);
  }
}

/** The word after quote removal when no part of it is expanded at run time; otherwise null. */
function staticValue(word: Word): string | null {
  if (word.parts === undefined) return word.value;
  for (const part of word.parts) {
    if (part.type === "Literal" || part.type === "SingleQuoted" || part.type === "AnsiCQuoted") continue;
    if (part.type === "DoubleQuoted" && part.parts.every((child) => child.type === "Literal")) continue;
    return null;
  }
  return word.value;
}
