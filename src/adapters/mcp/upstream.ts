import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import type { ClientCapabilities, Implementation, Transport } from "@modelcontextprotocol/client";
import { getDefaultEnvironment } from "@modelcontextprotocol/client/stdio";
import { ChildProcessTransport } from "./stdio.js";
import { toolwardenVersion } from "../../core/version.js";

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

/** Options for the connection to an upstream. */
export interface UpstreamOptions {
  /** Where a stdio server's stderr goes. Default inherit (the client's log). */
  stderr?: "inherit" | "pipe" | "ignore";
  /** The server's id, for messages ("server `github` exited with code 1"). */
  name?: string;
  /** Longest line a stdio server may send (bytes). Default 10 MiB. */
  maxLine?: number;
  /** What to say when a stdio server's line is over the limit. */
  overLimit?: (limit: number) => string;
}

/** A transport to the upstream. A stdio server's end (exit code, signal, a line over the limit) is reported as the transport's `reason`. */
export function upstreamTransport(spec: UpstreamSpec, options: UpstreamOptions = {}): Transport {
  if (isHttpUpstream(spec)) {
    return new StreamableHTTPClientTransport(
      new URL(spec.url),
      spec.headers ? { requestInit: { headers: spec.headers } } : undefined,
    );
  }
  return new ChildProcessTransport({
    command: spec.command,
    args: spec.args,
    env: { ...getDefaultEnvironment(), ...spec.env },
    cwd: spec.cwd,
    stderr: options.stderr ?? "inherit",
    name: options.name,
    maxLine: options.maxLine,
    overLimit: options.overLimit,
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

/**
 * Connects the v2 SDK client to an upstream server. It probes with `server/discover` and speaks
 * 2026-07-28 to a server that offers it, else falls back to the 2025 `initialize` handshake, so
 * either generation of server works (and one that rejects the old protocol too).
 */
export async function connectUpstream(
  spec: UpstreamSpec,
  options: UpstreamOptions & {
    info?: Implementation;
    capabilities?: ClientCapabilities;
    timeout?: number;
    transport?: Transport;
  } = {},
): Promise<Client> {
  const client = new Client(options.info ?? { name: "toolwarden", version: toolwardenVersion() }, {
    capabilities: options.capabilities ?? {},
    versionNegotiation: { mode: "auto", probe: { timeoutMs: Math.min(options.timeout ?? 30_000, 10_000) } },
  });
  await client.connect(options.transport ?? upstreamTransport(spec, options), {
    timeout: options.timeout ?? 30_000,
  });
  return client;
}

/** Human-readable form of a spec, for messages. */
export function describeUpstream(spec: UpstreamSpec): string {
  return isHttpUpstream(spec) ? spec.url : [spec.command, ...(spec.args ?? [])].join(" ");
}
