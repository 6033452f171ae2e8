import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { ParseArgsConfig } from "node:util";
import { PolicyLoadError } from "../core/index.js";

/** A user-facing CLI failure: one line on stderr, a non-zero exit code, no stack trace. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

/** A command: `run` gets the arguments after the verb and returns the exit code. */
export interface Command {
  summary: string;
  usage: string;
  /** One line per flag: what it takes and does, shown by `--help`. */
  options?: readonly string[];
  /** Exit code for an error (a policy that does not load, any failure); default 1. `diff` uses 2, as diff(1). */
  errorExitCode?: number;
  run(argv: string[]): Promise<number>;
}

/** `1 record`, `2 records`. */
export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}

/** The `--help` line for `--store URL`, the same everywhere. */
export const STORE_OPTION = "--store URL             shared state: `memory:`, `sqlite:/path/state.db` or `redis://host:6379/0` (TOOLWARDEN_STORE)";
/** The `--help` line for the audit key, the same everywhere. */
export const AUDIT_KEY_OPTION = "--audit-key-file FILE   the audit HMAC key (or TOOLWARDEN_AUDIT_KEY / TOOLWARDEN_AUDIT_KEY_FILE)";

/** `parseArgs` with strict checking, turning its errors into a usage error. */
export function parseFlags<T extends NonNullable<ParseArgsConfig["options"]>>(
  argv: string[],
  options: T,
  usage: string,
): ReturnType<
  typeof parseArgs<{
    args: string[];
    options: T & { help: { type: "boolean"; short: "h" } };
    allowPositionals: true;
    strict: true;
  }>
> {
  try {
    return parseArgs({
      args: argv,
      options: { ...options, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new CliError(`${(error as Error).message.split("\n")[0]}\nusage: ${usage}`);
  }
}

/** Reads a file, or standard input for `-`. */
export function readInput(path: string): string {
  try {
    return readFileSync(path === "-" ? 0 : path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CliError(
      `cannot read \`${path}\`: ${code === "ENOENT" ? "no such file" : (error as Error).message}`,
    );
  }
}

/** Prints a policy error the way a compiler does: position, message, code frame, help. */
export function printPolicyError(error: PolicyLoadError): void {
  for (const issue of error.issues) {
    process.stderr.write(`${issue.file}:${issue.line}:${issue.col}: error: ${issue.message}\n`);
    if (issue.frame) process.stderr.write(`${issue.frame}\n`);
    if (issue.help) process.stderr.write(`     = help: ${issue.help}\n`);
  }
}

export function isPolicyError(error: unknown): error is PolicyLoadError {
  return error instanceof PolicyLoadError;
}

/** A progress bar on stderr when it is a terminal; a line every 10% otherwise. */
export function progress(label: string, total: number): { tick(n?: number): void; done(): void } {
  let count = 0;
  let lastDecile = -1;
  const tty = process.stderr.isTTY;
  const draw = () => {
    const ratio = total ? count / total : 1;
    if (tty) {
      const width = 30;
      const filled = Math.round(ratio * width);
      process.stderr.write(
        `\r${label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${count}/${total}`,
      );
    } else {
      const decile = Math.floor(ratio * 10);
      if (decile !== lastDecile) {
        lastDecile = decile;
        process.stderr.write(`${label}: ${count}/${total}\n`);
      }
    }
  };
  return {
    tick(n = 1) {
      count += n;
      draw();
    },
    done() {
      count = total;
      draw();
      if (tty) process.stderr.write("\n");
    },
  };
}

/** Renders rows as an aligned text table. */
export function table(header: string[], rows: Array<Array<string | number>>): string {
  const cells = [header, ...rows.map((row) => row.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? "").length)));
  const line = (row: string[]) =>
    row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join("  ");
  return [line(cells[0]), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)].join(
    "\n",
  );
}
