import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { cliPath } from "../setup/built-cli.js";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const AUDIT_KEY = "test-audit-key-0123456789abcdef";
/** tsx's loader by absolute URL, so child processes run TypeScript whatever their working directory. */
const TSX = pathToFileURL(join(ROOT, "node_modules/tsx/dist/loader.mjs")).href;
/** Runs toolwarden's built CLI (the global test setup rebuilds dist/ when a source is newer). */
export const CLI = [cliPath()];
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

/** A policy for the web fixture: its pages are untrusted, and untrusted content may not be mailed out. */
export const WEB_POLICY = `version: 1
default: allow
servers:
  web:
    tools:
      fetch_page: { produces: [untrusted] }
tools:
  send_email: { sink: external }
rules:
  - name: no-untrusted-into-external-sinks
    when: { sink: external, flows: [untrusted] }
    verdict: deny
`;

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

/** A fixture server of test/mcp/fixtures/interop-server.ts built with the v1 or v2 SDK. */
export const INTEROP = FIXTURE("interop-server.ts");

export interface RawProxy {
  /** Writes one JSON-RPC message to the proxy's stdin. */
  send(message: Record<string, unknown>): void;
  /** Resolves with the first message from the proxy that `match` accepts (seen or yet to come). */
  next(match: (message: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  /** Sends a request and resolves with its response. */
  request(id: number, method: string, params?: Record<string, unknown>): Promise<Record<string, unknown>>;
  /** Sends `initialize` and `notifications/initialized` (protocol 2025-11-25). */
  initialize(): Promise<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
  messages: Array<Record<string, unknown>>;
  kill(signal?: NodeJS.Signals): void;
  /** Stops reading the proxy's output (a client that does not keep up), and starts again. */
  pause(): void;
  resume(): void;
  pid: number;
}

/**
 * Starts `toolwarden mcp proxy` and talks JSON-RPC lines to it directly (no SDK), so a test sees
 * exactly what reaches the client, the proxy's stderr and its exit status.
 */
export function rawProxy(options: {
  policy: string;
  server: string[];
  serverId?: string;
  flags?: string[];
  env?: Record<string, string>;
}): RawProxy {
  const dir = tempDir();
  writeFileSync(join(dir, "policy.yaml"), options.policy);
  const child = spawn(
    process.execPath,
    [
      ...CLI,
      "mcp",
      "proxy",
      "-p",
      join(dir, "policy.yaml"),
      "--server-id",
      options.serverId ?? "fixture",
      "--pins",
      join(dir, "pins.jsonl"),
      ...(options.flags ?? []),
      "--",
      process.execPath,
      ...options.server,
    ],
    { cwd: dir, env: { ...(process.env as Record<string, string>), ...options.env }, stdio: "pipe" },
  );
  const messages: Array<Record<string, unknown>> = [];
  const waiters: Array<{
    match: (m: Record<string, unknown>) => boolean;
    resolve: (m: Record<string, unknown>) => void;
  }> = [];
  let buffer = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    buffer += chunk.toString("utf8");
    let cut = buffer.indexOf("\n");
    while (cut >= 0) {
      const line = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 1);
      cut = buffer.indexOf("\n");
      if (!line.trim()) continue;
      const message = JSON.parse(line) as Record<string, unknown>;
      messages.push(message);
      for (const waiter of [...waiters]) {
        if (waiter.match(message)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(message);
        }
      }
    }
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  });
  child.stdin.on("error", () => {});
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const proxy: RawProxy = {
    messages,
    exited,
    stderr: () => stderr,
    kill: (signal = "SIGTERM") => child.kill(signal),
    pause: () => child.stdout.pause(),
    resume: () => child.stdout.resume(),
    pid: child.pid as number,
    send: (message) => {
      child.stdin.write(`${JSON.stringify({ jsonrpc: "2.0", ...message })}\n`);
    },
    next: (match) => {
      const seen = messages.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => waiters.push({ match, resolve }));
    },
    request: (id, method, params) => {
      proxy.send({ id, method, params: params ?? {} });
      return proxy.next((m) => m.id === id && ("result" in m || "error" in m));
    },
    initialize: async () => {
      const result = await proxy.request(0, "initialize", {
        protocolVersion: "2025-11-25",
        capabilities: {},
        clientInfo: { name: "raw-client", version: "1.0.0" },
      });
      proxy.send({ method: "notifications/initialized" });
      return result;
    },
  };
  return proxy;
}

/** What the interop tests need of a client, whichever SDK generation it is built with. */
export interface AnyClient {
  sdk: "v1" | "v2";
  /** `modern` (2026-07-28) or `legacy` (2025), as negotiated. */
  era(): string;
  callTool(
    params: { name: string; arguments?: Record<string, unknown> },
    options?: { onprogress?: (p: { progress: number }) => void; signal?: AbortSignal },
  ): Promise<CallToolResult>;
  readResource(uri: string): Promise<{ contents: Array<{ uri: string; text?: string }> }>;
  getPrompt(name: string, args: Record<string, string>): Promise<{ messages: unknown[] }>;
  listTools(): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * Starts a process (node arguments) and connects a real SDK client of the given generation to it
 * over stdio: v1 (`@modelcontextprotocol/sdk`, 2025 only) or v2 (`@modelcontextprotocol/client`,
 * probing with `server/discover` and falling back to `initialize`).
 */
export async function stdioClient(
  sdk: "v1" | "v2",
  args: string[],
  env: Record<string, string> = {},
  cwd?: string,
): Promise<AnyClient & { stderr(): string }> {
  const params = {
    command: process.execPath,
    args,
    env: { ...(process.env as Record<string, string>), ...env },
    cwd,
    stderr: "pipe" as const,
  };
  let stderr = "";
  const collect = (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  };
  if (sdk === "v1") {
    const transport = new StdioClientTransport(params);
    transport.stderr?.on("data", collect);
    const client = new Client(
      { name: "interop-client-v1", version: "1.0.0" },
      { capabilities: { elicitation: {} } },
    );
    client.setRequestHandler(ElicitRequestSchema, async () => ({
      action: "accept",
      content: { confirm: true },
    }));
    await client.connect(transport);
    return {
      sdk,
      era: () => "legacy",
      callTool: (p, options) => client.callTool(p, undefined, options) as Promise<CallToolResult>,
      readResource: (uri) => client.readResource({ uri }) as never,
      getPrompt: (name, a) => client.getPrompt({ name, arguments: a }) as never,
      listTools: async () => (await client.listTools()).tools.map((t) => t.name),
      close: () => client.close(),
      stderr: () => stderr,
    };
  }
  const { Client: Client2 } = await import("@modelcontextprotocol/client");
  const { StdioClientTransport: Transport2 } = await import("@modelcontextprotocol/client/stdio");
  const transport = new Transport2(params);
  (transport.stderr as NodeJS.ReadableStream | null)?.on("data", collect);
  const client = new Client2(
    { name: "interop-client-v2", version: "2.0.0" },
    { capabilities: { elicitation: {} }, versionNegotiation: { mode: "auto" } },
  );
  client.setRequestHandler("elicitation/create", async () => ({
    action: "accept",
    content: { confirm: true },
  }));
  await client.connect(transport);
  return {
    sdk,
    era: () => client.getProtocolEra() ?? "none",
    callTool: (p, options) => client.callTool(p, options) as Promise<CallToolResult>,
    readResource: (uri) => client.readResource({ uri }) as never,
    getPrompt: (name, a) => client.getPrompt({ name, arguments: a }) as never,
    listTools: async () => (await client.listTools()).tools.map((t) => t.name),
    close: () => client.close(),
    stderr: () => stderr,
  };
}

/** Connects a real SDK client of the given generation to a Streamable HTTP endpoint with a bearer token. */
export async function httpClient(sdk: "v1" | "v2", url: string, token: string): Promise<AnyClient> {
  const headers = { Authorization: `Bearer ${token}` };
  if (sdk === "v1") {
    const { StreamableHTTPClientTransport } = await import(
      "@modelcontextprotocol/sdk/client/streamableHttp.js"
    );
    const client = new Client(
      { name: "interop-http-v1", version: "1.0.0" },
      { capabilities: { elicitation: {} } },
    );
    client.setRequestHandler(ElicitRequestSchema, async () => ({
      action: "accept",
      content: { confirm: true },
    }));
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
    return {
      sdk,
      era: () => "legacy",
      callTool: (p, options) => client.callTool(p, undefined, options) as Promise<CallToolResult>,
      readResource: (uri) => client.readResource({ uri }) as never,
      getPrompt: (name, a) => client.getPrompt({ name, arguments: a }) as never,
      listTools: async () => (await client.listTools()).tools.map((t) => t.name),
      close: () => client.close(),
    };
  }
  const { Client: Client2, StreamableHTTPClientTransport: Transport2 } = await import(
    "@modelcontextprotocol/client"
  );
  const client = new Client2(
    { name: "interop-http-v2", version: "2.0.0" },
    { capabilities: { elicitation: {} }, versionNegotiation: { mode: "auto" } },
  );
  client.setRequestHandler("elicitation/create", async () => ({
    action: "accept",
    content: { confirm: true },
  }));
  await client.connect(new Transport2(new URL(url), { requestInit: { headers } }));
  return {
    sdk,
    era: () => client.getProtocolEra() ?? "none",
    callTool: (p, options) => client.callTool(p, options) as Promise<CallToolResult>,
    readResource: (uri) => client.readResource({ uri }) as never,
    getPrompt: (name, a) => client.getPrompt({ name, arguments: a }) as never,
    listTools: async () => (await client.listTools()).tools.map((t) => t.name),
    close: () => client.close(),
  };
}
