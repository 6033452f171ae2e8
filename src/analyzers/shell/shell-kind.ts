import { z } from "zod";
import type { ConstraintKind } from "../kind.js";
import { checkShell, ProgramList, type ShellAllow } from "./check.js";

/** Options of `shell: { ... }` under `tools.<tool>.args.<arg>`. */
export const shellOptions = z
  .object({
    /**
     * Programs that may run, or program-plus-subcommand prefixes such as `"git log"`, matched on
     * parsed words after quote removal. A path matches only an entry with that exact path:
     * `/bin/ls` is not `ls`, since `./ls` or `/tmp/ls` could be anything.
     */
    programs: z.array(z.string().trim().min(1)),
    /** Constructs denied unless allowed here. */
    allow: z
      .object({
        /** `$(...)`, backticks, `<(...)`; the commands inside are still checked. */
        substitution: z.boolean().optional(),
        /**
         * `>`, `>>`, `>|`, `&>`, `<>` to files (`/dev/null` and fd duplication are always fine), and
         * options or operands of allowed programs that write or delete files (`sort -o`, `find
         * -delete`, `tee FILE`, `sed -i`, `tar -x`, `git log --output`).
         */
        redirect_write: z.boolean().optional(),
        /** `&` and `coproc`. */
        background: z.boolean().optional(),
        /** `NAME=value` assignments (never `PATH`, `LD_PRELOAD`, `BASH_ENV` and the like). */
        env_assign: z.boolean().optional(),
      })
      .strict()
      .optional(),
    /** Longest command analyzed, in UTF-16 units; default 100000. */
    max_length: z.number().int().positive().max(1_000_000).optional(),
  })
  .strict();

export type ShellOptions = z.infer<typeof shellOptions>;

/**
 * `shell: { programs: [ls, cat, "git log"] }`: the argument is a bash command line in which every
 * program of every pipeline, list, subshell, function body and substitution is allowed, and no
 * eval, `sh -c`, dynamic program name, write redirection, background job or assignment appears
 * unless allowed. Wrappers (`env`, `timeout`, `xargs`, `sudo`, `find -exec`, ...) must be listed
 * themselves and the program they run is checked too; words xargs adds from its input are unknown,
 * as are computed words where an option could go in programs whose options write or run commands.
 * Parsed with unbash (sync, pure TypeScript).
 */
export const shellKind: ConstraintKind<ShellOptions> = {
  kind: "shell",
  summary: "a shell command whose every program, redirection and expansion the policy allows",
  options: shellOptions,
  compile(options) {
    const programs = new ProgramList(options.programs);
    const allow: ShellAllow = {
      substitution: options.allow?.substitution ?? false,
      redirect_write: options.allow?.redirect_write ?? false,
      background: options.allow?.background ?? false,
      env_assign: options.allow?.env_assign ?? false,
    };
    const maxLength = options.max_length ?? 100_000;
    return (value, arg, out) => {
      if (typeof value !== "string") {
        out.push({ code: "shell.unparsable", message: "expected a command string", arg });
      } else if (value.length > maxLength) {
        out.push({
          code: "shell.unparsable",
          message: `command of ${value.length} characters is over ${maxLength}`,
          arg,
        });
      } else if (value.includes("\0")) {
        out.push({ code: "shell.unparsable", message: "a NUL character", arg });
      } else if (nestingDepth(value) > MAX_NESTING) {
        // The parser's cost grows steeply with nested substitutions (a 27 KB `$(( $(echo ...` took
        // seconds in fuzzing); no command an agent should run nests this deep.
        out.push({
          code: "shell.unparsable",
          message: `substitutions or groups nested more than ${MAX_NESTING} deep`,
          arg,
        });
      } else {
        try {
          checkShell(value, programs, allow, arg, out);
        } catch (error) {
          const message = (error as { message?: unknown })?.message;
          out.push({
            code: "shell.unparsable",
            message: `could not analyze the command: ${typeof message === "string" ? message.slice(0, 120) : "internal error"}`,
            arg,
          });
        }
      }
    };
  },
};

/** Deepest nesting the analyzer parses; deeper commands are refused before the parser sees them. */
const MAX_NESTING = 16;

/**
 * Nesting depth of `$(`, `<(`, `>(`, `(`, `{` and backquotes, counted without regard to quoting:
 * an over-count only refuses a strange command, never lets one through unparsed.
 */
function nestingDepth(command: string): number {
  let depth = 0;
  let deepest = 0;
  let backquoted = false;
  for (let i = 0; i < command.length; i++) {
    const c = command.charCodeAt(i);
    if (c === 40 || c === 123) {
      // ( {
      if (++depth > deepest) deepest = depth;
    } else if (c === 41 || c === 125) {
      // ) }
      if (depth > 0) depth--;
    } else if (c === 96) {
      // ` toggles a level
      backquoted = !backquoted;
      depth += backquoted ? 1 : -1;
      if (depth > deepest) deepest = depth;
    }
  }
  return deepest;
}
