#!/usr/bin/env node
import { check } from "./check.js";
import { diff, explain } from "./explain.js";
import { replay } from "./replay.js";
import { test } from "./test.js";
import { CliError, isPolicyError, printPolicyError } from "./util.js";
import type { Command } from "./util.js";
import { validate } from "./validate.js";
import { toolwardenVersion } from "../core/version.js";

/** Commands that load heavy dependencies are imported only when used. */
const lazy = (load: () => Promise<Command>, summary: string, usage: string): Command => ({
  summary,
  usage,
  run: async (argv) => (await load()).run(argv),
});

const COMMANDS: Record<string, Command> = {
  validate,
  check,
  replay,
  test,
  explain,
  diff,
  bench: lazy(
    async () => (await import("./bench.js")).bench,
    "measure decision cost against a raw function call",
    "toolwarden bench [--json]",
  ),
  eval: lazy(
    async () => (await import("./eval.js")).evalCommand,
    "run the adversarial suite: precision, recall, F1 per analyzer",
    "toolwarden eval [DIR] [--json] [--misses] | eval --traces [DIR]",
  ),
  audit: lazy(
    async () => ({ summary: "", usage: "", run: (await import("./audit.js")).run }),
    "verify, tail, query the audit log; share receipts",
    "toolwarden audit verify|tail|query|receipt LOG...",
  ),
  mcp: lazy(
    async () => (await import("./mcp.js")).mcp,
    "MCP stdio proxy, HTTP gateway, tool pins, scan of client configs",
    "toolwarden mcp proxy|gateway|pins|scan ...",
  ),
  serve: lazy(
    async () => (await import("./serve.js")).serve,
    "run the HTTP decision API and the approvals/audit dashboard",
    "toolwarden serve -p POLICY [--port 8080] [--data DIR]",
  ),
  suggest: lazy(
    async () => (await import("./suggest.js")).suggest,
    "write a least-privilege policy from traces or audit logs",
    "toolwarden suggest TRACE_OR_LOG... [-o FILE] [--against POLICY]",
  ),
  approvals: lazy(
    async () => (await import("./approvals.js")).approvals,
    "list, approve or deny pending calls",
    "toolwarden approvals list|approve|deny (--store URL | --server URL)",
  ),
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  const lines = Object.entries(COMMANDS).map(
    ([name, command]) => `  ${name.padEnd(width)}  ${command.summary}`,
  );
  return `toolwarden — a policy-enforcing reference monitor for AI agent tool calls\n\nusage: toolwarden <command> [options]\n\n${lines.join("\n")}\n\nRun \`toolwarden <command> --help\` for a command's options.\n`;
}

async function main(argv: string[]): Promise<number> {
  const debug = argv.includes("--debug");
  const args = argv.filter((arg) => arg !== "--debug");
  const [name, ...rest] = args;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  if (name === "--version") {
    process.stdout.write(`toolwarden ${toolwardenVersion()}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`toolwarden: unknown command \`${name}\`\n${usage()}`);
    return 2;
  }
  try {
    return await command.run(rest);
  } catch (error) {
    if (isPolicyError(error)) {
      printPolicyError(error);
      return command.errorExitCode ?? 1;
    }
    if (error instanceof CliError) {
      process.stderr.write(`toolwarden ${name}: ${error.message}\n`);
      return error.exitCode;
    }
    // A library error may say how the CLI does it (`--audit-key-file`, not the sink's `keyFile`).
    const cliHelp = (error as { cliHelp?: unknown })?.cliHelp;
    const message = typeof cliHelp === "string" ? cliHelp : ((error as Error)?.message ?? String(error));
    process.stderr.write(`toolwarden ${name}: ${message}\n`);
    if (debug) process.stderr.write(`${(error as Error)?.stack ?? ""}\n`);
    return command.errorExitCode ?? 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // A failed command exits at once: a store connection, a timer or a child process left open by
    // a start-up that failed half-way must not keep it running (a supervisor has to see the failure).
    // Once what was written has drained (pipes are asynchronous on macOS).
    if (code !== 0) process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
  },
  (error) => {
    process.stderr.write(`toolwarden: ${String(error)}\n`);
    process.exit(1);
  },
);
