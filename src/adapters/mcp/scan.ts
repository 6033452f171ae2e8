import type { Client } from "@modelcontextprotocol/client";
import { isAbsolute } from "node:path";
import { stringify } from "yaml";
import { compileShadowCheck } from "../../analyzers/identity/index.js";
import { compilePolicyText } from "../../policy/index.js";
import { listAllTools } from "./approve.js";
import type { ConfiguredServer } from "./client-configs.js";
import { fingerprintChanges, fingerprintTool } from "./pins.js";
import type { PinLedger } from "./pins.js";
import { assessTool } from "./risk.js";
import type { Capability, ListedTool, RiskFinding, ToolAnnotations } from "./risk.js";
import { ChildProcessTransport } from "./stdio.js";
import { connectUpstream, upstreamTransport } from "./upstream.js";
import { toolwardenVersion } from "../../core/version.js";

export interface ScannedTool {
  name: string;
  description: string;
  capabilities: Capability[];
  findings: RiskFinding[];
  level: "high" | "medium" | "low" | "none";
  /** The server's annotations for the tool, when it publishes any. */
  annotations?: ToolAnnotations;
  /** Against the pin ledger, when one was given: `pinned` (same), `changed`, or `new`. */
  pin?: "pinned" | "changed" | "new";
  /** The tool as listed (for pinning). */
  listed: ListedTool;
}

export interface ScannedServer {
  /** Unique among the scanned servers (a name used by two clients for different servers gets a suffix). */
  id: string;
  clients: string[];
  files: string[];
  status: "ok" | "error" | "skipped";
  error?: string;
  tools: ScannedTool[];
  ms: number;
  /** Directories the server was started with (absolute paths among its arguments): where its file tools may reach. */
  roots?: string[];
}

export type ScanProgress =
  | { server: string; state: "starting" }
  | { server: string; state: "done" | "error" | "skipped"; done: number; total: number; detail: string };

export interface ScanOptions {
  /** Per server: start, initialize and list (ms). Default 30 s. */
  timeout?: number;
  /** Servers started at once. Default 4. */
  concurrency?: number;
  ledger?: PinLedger;
  onProgress?: (event: ScanProgress) => void;
}

/**
 * Starts each configured server with the SDK's client, lists its tools and assesses them:
 * instructions to the model and hidden characters in descriptions, capabilities, and names that
 * collide with or imitate another server's tools. The same server configured in several clients
 * is started once.
 */
export async function scanServers(
  configured: readonly ConfiguredServer[],
  options: ScanOptions = {},
): Promise<ScannedServer[]> {
  const servers = groupServers(configured);
  const total = servers.length;
  let done = 0;
  const results: ScannedServer[] = new Array(total);
  let next = 0;
  const worker = async () => {
    while (next < total) {
      const i = next++;
      const { id, entries } = servers[i];
      const base = {
        id,
        clients: [...new Set(entries.map((e) => e.client))],
        files: [...new Set(entries.map((e) => e.file))],
        tools: [],
      };
      const first = entries[0];
      const roots = rootsOf(first.spec);
      if (roots.length) Object.assign(base, { roots });
      if (!first.spec || first.disabled) {
        results[i] = {
          ...base,
          status: "skipped",
          error: first.disabled ? "disabled in the client config" : first.problem,
          ms: 0,
        };
        options.onProgress?.({
          server: id,
          state: "skipped",
          done: ++done,
          total,
          detail: results[i].error ?? "",
        });
        continue;
      }
      options.onProgress?.({ server: id, state: "starting" });
      const started = Date.now();
      try {
        const tools = await listServer(first, options.timeout ?? 30_000);
        results[i] = {
          ...base,
          status: "ok",
          tools: tools.map((tool) => scannedTool(tool)),
          ms: Date.now() - started,
        };
        options.onProgress?.({
          server: id,
          state: "done",
          done: ++done,
          total,
          detail: `${tools.length} tools`,
        });
      } catch (error) {
        results[i] = { ...base, status: "error", error: (error as Error).message, ms: Date.now() - started };
        options.onProgress?.({
          server: id,
          state: "error",
          done: ++done,
          total,
          detail: (error as Error).message,
        });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 4, total) }, worker));
  crossCheck(results);
  if (options.ledger) {
    await options.ledger.refresh();
    for (const server of results) {
      for (const tool of server.tools) {
        const pin = options.ledger.get(server.id, tool.name);
        if (!pin) tool.pin = "new";
        else if (fingerprintChanges(pin, fingerprintTool(server.id, tool.listed)).length) {
          tool.pin = "changed";
          tool.findings.push({
            code: "pin.changed",
            message: "changed since it was pinned (possible rug pull)",
            severity: "high",
          });
          tool.level = "high";
        } else tool.pin = "pinned";
      }
    }
  }
  return results;
}

function groupServers(
  configured: readonly ConfiguredServer[],
): Array<{ id: string; entries: ConfiguredServer[] }> {
  const groups: Array<{ id: string; key: string; entries: ConfiguredServer[] }> = [];
  for (const server of configured) {
    const key = JSON.stringify(server.spec ?? server.problem ?? null);
    const same = groups.find((g) => g.entries[0].id === server.id && g.key === key);
    if (same) {
      same.entries.push(server);
      continue;
    }
    const taken = new Set(groups.map((g) => g.id));
    let id = server.id.replace(/[^A-Za-z0-9_-]+/g, "-") || "server";
    if (taken.has(id)) id = `${id}-${server.client}`;
    for (let n = 2; taken.has(id); n++) id = `${server.id}-${n}`;
    groups.push({ id, key, entries: [server] });
  }
  return groups;
}

async function listServer(server: ConfiguredServer, timeout: number): Promise<ListedTool[]> {
  const transport = upstreamTransport(server.spec!, { stderr: "pipe", name: server.id });
  let stderr = "";
  if (transport instanceof ChildProcessTransport) {
    transport.stderr?.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString("utf8")).slice(-2000);
    });
  }
  let client: Client | undefined;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${Math.round(timeout / 1000)}s`)), timeout);
  });
  try {
    return await Promise.race([
      (async () => {
        client = await connectUpstream(server.spec!, {
          info: { name: "toolwarden-scan", version: toolwardenVersion() },
          transport,
          timeout,
        });
        const caps = client.getServerCapabilities();
        return caps?.tools ? listAllTools(client) : [];
      })(),
      deadline,
    ]);
  } catch (error) {
    const tail = stderr.trim().split("\n").slice(-1)[0];
    throw new Error(
      tail ? `${(error as Error).message} (stderr: ${tail.slice(0, 200)})` : (error as Error).message,
    );
  } finally {
    clearTimeout(timer);
    await (client ? client.close() : transport.close()).catch(() => {});
  }
}

function scannedTool(tool: ListedTool): ScannedTool {
  const risk = assessTool(tool);
  return {
    name: tool.name,
    description: tool.description ?? "",
    capabilities: risk.capabilities,
    findings: [...risk.findings],
    level: risk.level,
    ...(risk.annotations ? { annotations: risk.annotations } : {}),
    listed: tool,
  };
}

/** Names shared by two servers (the client cannot tell them apart) or imitating another server's. */
function crossCheck(results: ScannedServer[]): void {
  for (const server of results) {
    const others = results
      .filter((other) => other !== server)
      .flatMap((other) => other.tools.map((tool) => ({ server: other.id, name: tool.name })));
    const byName = new Map(others.map((other) => [other.name, other.server]));
    const alike = compileShadowCheck([...byName.keys()]);
    for (const tool of server.tools) {
      const same = byName.get(tool.name);
      if (same !== undefined) {
        tool.findings.push({
          code: "name.collision",
          message: `server \`${same}\` has a tool of the same name`,
          severity: "medium",
        });
      } else {
        const finding = alike(tool.name);
        if (finding) {
          // Of two look-alikes, a plain lower-case ASCII name is the one imitated, not the imitator.
          const targets = others.filter((other) => compileShadowCheck([other.name])(tool.name) !== null);
          const imitated = isPlainName(tool.name) && targets.every((other) => !isPlainName(other.name));
          tool.findings.push(
            imitated
              ? {
                  code: "name.imitated",
                  message: `imitated by ${targets.map((t) => `\`${t.name}\` on server \`${t.server}\``).join(", ")}`,
                  severity: "medium",
                }
              : {
                  code: `name.${finding.code.split(".")[1]}`,
                  message: finding.message.replace("declared tool", "another server's tool"),
                  severity: "high",
                },
          );
        }
      }
      tool.level = tool.findings.some((f) => f.severity === "high")
        ? "high"
        : tool.findings.some((f) => f.severity === "medium")
          ? "medium"
          : tool.findings.length
            ? "low"
            : "none";
    }
  }
}

function isPlainName(name: string): boolean {
  return /^[\x21-\x7e]+$/.test(name) && name === name.toLowerCase();
}

const GLOB = /[*?[\]{}!]/;

/**
 * A starting policy for the scanned servers: read-only tools allowed, tools that write or run
 * things asked, senders marked as external sinks and asked, fetchers labelled `untrusted`, flagged
 * tools denied, and untrusted content kept out of external sinks. Checked by compiling it.
 */
/** Absolute directory paths among a stdio server's arguments (`server-filesystem /srv/docs`). */
function rootsOf(spec: ConfiguredServer["spec"]): string[] {
  if (!spec || !("command" in spec) || !spec.args) return [];
  return spec.args.filter((arg) => isAbsolute(arg) && !/\.(m?js|cjs|py|ts)$/.test(arg));
}

/** String arguments of a tool that name a file or directory, by their schema property names. */
function pathArguments(tool: ScannedTool): string[] {
  const schema = tool.listed.inputSchema as { properties?: Record<string, { type?: unknown }> } | undefined;
  return Object.entries(schema?.properties ?? {})
    .filter(
      ([name, spec]) =>
        spec?.type === "string" &&
        /^(path|file|filename|file_?path|source|destination|dir|directory|root|cwd)$/i.test(name),
    )
    .map(([name]) => name);
}

export function starterPolicy(results: readonly ScannedServer[], now = new Date()): string {
  const servers: Record<string, unknown> = {};
  const tools: Record<string, unknown> = {};
  const rules: unknown[] = [];
  for (const server of results) {
    if (server.status !== "ok") continue;
    const groups = { allow: [] as string[], ask: [] as string[], deny: [] as string[] };
    const untrusted: Record<string, unknown> = {};
    for (const tool of server.tools) {
      if (GLOB.test(tool.name)) continue;
      // A file tool reaches only the directories the server was configured with.
      const pathArgs = server.roots?.length ? pathArguments(tool) : [];
      if (pathArgs.length) {
        const args = Object.fromEntries(pathArgs.map((arg) => [arg, { path: { within: server.roots } }]));
        tools[tool.name] = { ...(tools[tool.name] as object), args };
      }
      if (tool.level === "high") groups.deny.push(tool.name);
      else if (tool.capabilities.some((c) => c === "exec" || c === "write" || c === "send"))
        groups.ask.push(tool.name);
      else groups.allow.push(tool.name);
      if (tool.capabilities.includes("send") && tool.level !== "high")
        tools[tool.name] = { sink: "external" };
      // The server says it destroys data: the gateway treats it as high risk (a hint of danger is believed).
      if (tool.annotations?.destructiveHint === true && tool.level !== "high")
        tools[tool.name] = { ...(tools[tool.name] as object), risk: "high" };
      if (tool.capabilities.includes("network") && !tool.capabilities.includes("send"))
        untrusted[tool.name] = { produces: ["untrusted"] };
    }
    servers[server.id] = Object.keys(untrusted).length
      ? { pins: "deny", tools: untrusted }
      : { pins: "deny" };
    const explain = {
      allow: "reads only",
      ask: "writes, runs or sends: a human approves",
      deny: "flagged by `toolwarden mcp scan`",
    };
    for (const verdict of ["deny", "ask", "allow"] as const) {
      if (!groups[verdict].length) continue;
      rules.push({
        name: `${server.id}-${verdict}`,
        when: { server: server.id, tool: groups[verdict] },
        verdict,
        message: `${server.id}: ${explain[verdict]}`,
      });
    }
  }
  rules.push({
    name: "no-untrusted-into-external-sinks",
    when: { sink: "external", flows: ["untrusted"] },
    verdict: "deny",
    message: "Content from an untrusted tool may not reach an external sink.",
  });
  const policy: Record<string, unknown> = { version: 1, name: "mcp-scan", default: "ask", servers };
  if (Object.keys(tools).length) policy.tools = tools;
  policy.rules = rules;
  const text = `# Starting policy written by \`toolwarden mcp scan\` on ${now.toISOString().slice(0, 10)}.\n# Review it: every tool is allowed, asked or denied by the rules below; anything else asks.\n${stringify(policy, { lineWidth: 0 })}`;
  compilePolicyText(text, "mcp-scan.yaml");
  return text;
}
