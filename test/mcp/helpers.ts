import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const AUDIT_KEY = "test-audit-key-0123456789abcdef";
/** tsx's loader by absolute URL, so child processes run TypeScript whatever their working directory. */
const TSX = pathToFileURL(join(ROOT, "node_modules/tsx/dist/loader.mjs")).href;
/** Runs toolwarden's CLI from source. */
export const CLI = ["--import", TSX, join(ROOT, "src/cli/main.ts")];
/** The reference "everything" server from npm, over stdio. */
export const EVERYTHING = [
  join(ROOT, "node_modules/@modelcontextprotocol/server-everything/dist/index.js"),
  "stdio",
];
/** The reference filesystem server from npm, serving one directory. */
export const FILESYSTEM = (root: string) => [
  join(ROOT, "node_modules/@modelcontextprotocol/server-filesystem/dist/index.js"),
  root,
];
/** One of our fixture servers (TypeScript, run with tsx). */
export const FIXTURE = (name: string) => ["--import", TSX, join(ROOT, "test/mcp/fixtures", name)];

export function tempDir(prefix = "tw-mcp-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface Proxied {
  client: Client;
  dir: string;
  /** Closes the client; the proxy then stops its server and flushes its audit log. */
  close(): Promise<void>;
  audit(): Array<Record<string, unknown>>;
  stderr(): string;
}

/**
 * Starts `toolwarden mcp proxy` in front of a server (node arguments) and connects the SDK's real
 * client to it over stdio, the way Claude Desktop or Cursor would.
 */
export async function proxied(options: {
  policy: string;
  server: string[];
  serverId: string;
  flags?: string[];
  dir?: string;
  env?: Record<string, string>;
  client?: ConstructorParameters<typeof Client>[1];
}): Promise<Proxied> {
  const dir = options.dir ?? tempDir();
  writeFileSync(join(dir, "policy.yaml"), options.policy);
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [
      ...CLI,
      "mcp",
      "proxy",
      "-p",
      join(dir, "policy.yaml"),
      "--server-id",
      options.serverId,
      "--audit",
      join(dir, "audit.jsonl"),
      "--pins",
      join(dir, "pins.jsonl"),
      ...(options.flags ?? []),
      "--",
      process.execPath,
      ...options.server,
    ],
    env: { ...(process.env as Record<string, string>), TOOLWARDEN_AUDIT_KEY: AUDIT_KEY, ...options.env },
    cwd: dir,
    stderr: "pipe",
  });
  let stderr = "";
  transport.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  });
  const client = new Client({ name: "e2e-client", version: "1.0.0" }, options.client ?? { capabilities: {} });
  await client.connect(transport);
  return {
    client,
    dir,
    close: () => client.close(),
    audit: () => readJsonl(join(dir, "audit.jsonl")),
    stderr: () => stderr,
  };
}

export function readJsonl(file: string): Array<Record<string, unknown>> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return [];
  }
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** The text of a tool result. */
export function text(result: unknown): string {
  return ((result as CallToolResult).content ?? []).map((c) => (c.type === "text" ? c.text : "")).join("\n");
}

/** Waits until `check` holds (polling; the test's own timeout bounds it). */
export async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
