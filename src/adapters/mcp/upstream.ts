import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { ClientCapabilities, Implementation } from "@modelcontextprotocol/sdk/types.js";

/** How to reach an upstream MCP server: a command over stdio, or a Streamable HTTP URL. */
export type UpstreamSpec = StdioUpstream | HttpUpstream;

export interface StdioUpstream {
  command: string;
  args?: string[];
  /** Variables for the server. The proxy passes its own environment (minus toolwarden's keys); the gateway only these and the SDK's safe defaults. */
  env?: Record<string, string>;
  cwd?: string;
}

export interface HttpUpstream {
  url: string;
  headers?: Record<string, string>;
}

export function isHttpUpstream(spec: UpstreamSpec): spec is HttpUpstream {
  return "url" in spec;
}

/** A transport to the upstream; the stdio child's stderr goes to ours (the client's log) unless told otherwise. */
export function upstreamTransport(
  spec: UpstreamSpec,
  options: { stderr?: "inherit" | "pipe" | "ignore" } = {},
): Transport {
  if (isHttpUpstream(spec)) {
    return new StreamableHTTPClientTransport(
      new URL(spec.url),
      spec.headers ? { requestInit: { headers: spec.headers } } : undefined,
    );
  }
  return new StdioClientTransport({
    command: spec.command,
    args: spec.args,
    env: spec.env,
    cwd: spec.cwd,
    stderr: options.stderr ?? "inherit",
  });
}

/** The environment a proxied server inherits: ours, without toolwarden's secrets (the audit key must not reach a tool). */
export function inheritedEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && !key.startsWith("TOOLWARDEN_")) out[key] = value;
  }
  return out;
}

/** Connects a real SDK client to an upstream server. */
export async function connectUpstream(
  spec: UpstreamSpec,
  options: {
    info?: Implementation;
    capabilities?: ClientCapabilities;
    timeout?: number;
    stderr?: "inherit" | "pipe" | "ignore";
  } = {},
): Promise<Client> {
  const client = new Client(options.info ?? { name: "toolwarden", version: "0.1.0" }, {
    capabilities: options.capabilities ?? {},
  });
  await client.connect(upstreamTransport(spec, { stderr: options.stderr }), {
    timeout: options.timeout ?? 30_000,
  });
  return client;
}

/** Human-readable form of a spec, for messages. */
export function describeUpstream(spec: UpstreamSpec): string {
  return isHttpUpstream(spec) ? spec.url : [spec.command, ...(spec.args ?? [])].join(" ");
}
