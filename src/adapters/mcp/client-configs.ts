import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { parse as parseJsonc, printParseErrorCode } from "jsonc-parser";
import type { ParseError } from "jsonc-parser";
import type { UpstreamSpec } from "./upstream.js";

/** One MCP server as a client application configures it. */
export interface ConfiguredServer {
  /** The name the config gives it (the key under `mcpServers` / `servers`). */
  id: string;
  /** `claude-desktop`, `claude-code`, `cursor`, `vscode`, `windsurf`, or `file` for an explicit path. */
  client: string;
  file: string;
  /** How to reach it; undefined when it cannot be started (see `problem`). */
  spec?: UpstreamSpec;
  disabled?: boolean;
  problem?: string;
}

/** A config file and the client it belongs to. */
export interface ConfigLocation {
  client: string;
  file: string;
}

/**
 * Where Claude Desktop, Cursor, VS Code and Windsurf keep their MCP servers on Linux and macOS
 * (user-wide, then the project's own files under `cwd`).
 */
export function defaultConfigLocations(
  options: {
    home?: string;
    platform?: NodeJS.Platform;
    cwd?: string;
    env?: Record<string, string | undefined>;
  } = {},
): ConfigLocation[] {
  const home = options.home ?? homedir();
  const platform = options.platform ?? process.platform;
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? process.env;
  const appData =
    platform === "darwin"
      ? join(home, "Library", "Application Support")
      : (env.XDG_CONFIG_HOME ?? join(home, ".config"));
  return [
    { client: "claude-desktop", file: join(appData, "Claude", "claude_desktop_config.json") },
    // Claude Code: user and per-project servers in ~/.claude.json, shared project servers in .mcp.json.
    { client: "claude-code", file: join(home, ".claude.json") },
    { client: "claude-code", file: join(cwd, ".mcp.json") },
    { client: "cursor", file: join(home, ".cursor", "mcp.json") },
    { client: "cursor", file: join(cwd, ".cursor", "mcp.json") },
    { client: "vscode", file: join(appData, "Code", "User", "mcp.json") },
    { client: "vscode", file: join(appData, "Code", "User", "settings.json") },
    { client: "vscode", file: join(cwd, ".vscode", "mcp.json") },
    { client: "windsurf", file: join(home, ".codeium", "windsurf", "mcp_config.json") },
  ];
}

/** The default locations that exist. */
export function existingConfigLocations(
  options?: Parameters<typeof defaultConfigLocations>[0],
): ConfigLocation[] {
  return defaultConfigLocations(options).filter((location) => existsSync(location.file));
}

/** A config file that cannot be read or parsed. */
export class ClientConfigError extends Error {}

/**
 * Reads one client config: JSON with comments and trailing commas (VS Code, Cursor). Understands
 * `mcpServers` (Claude Desktop, Cursor, Windsurf, `.mcp.json`), `servers` (VS Code `mcp.json`) and
 * `mcp.servers` (VS Code `settings.json`). `${env:NAME}` and `${NAME}` are filled from the environment.
 */
export function readClientConfig(
  file: string,
  client = "file",
  env: Record<string, string | undefined> = process.env,
  options: { cwd?: string } = {},
): ConfiguredServer[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new ClientConfigError(
      `cannot read \`${file}\`: ${(error as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (error as Error).message}`,
    );
  }
  const errors: ParseError[] = [];
  const value = parseJsonc(text, errors, { allowTrailingComma: true, disallowComments: false });
  if (errors.length) {
    const first = errors[0];
    const line = text.slice(0, first.offset).split("\n").length;
    throw new ClientConfigError(`\`${file}\`:${line}: ${printParseErrorCode(first.error)}`);
  }
  const root = isRecord(value) ? value : {};
  const servers = {
    // Claude Code's ~/.claude.json: servers of the project in `cwd` (local scope) under `projects`.
    ...projectServers(root, resolve(options.cwd ?? process.cwd())),
    ...(pick(root.mcpServers) ??
      pick(root.servers) ??
      pick(isRecord(root.mcp) ? root.mcp.servers : undefined) ??
      {}),
  };
  return Object.entries(servers).map(([id, raw]) => toServer(id, raw, client, resolve(file), env));
}

/** `projects["<dir>"].mcpServers` of ~/.claude.json for the project directory `cwd`. */
function projectServers(root: Record<string, unknown>, cwd: string): Record<string, unknown> {
  if (!isRecord(root.projects)) return {};
  for (const [dir, project] of Object.entries(root.projects)) {
    if (resolve(dir) === cwd && isRecord(project)) return pick(project.mcpServers) ?? {};
  }
  return {};
}

function toServer(
  id: string,
  raw: unknown,
  client: string,
  file: string,
  env: Record<string, string | undefined>,
): ConfiguredServer {
  const server: ConfiguredServer = { id, client, file };
  if (!isRecord(raw)) return { ...server, problem: "not an object" };
  if (raw.disabled === true) server.disabled = true;
  const fill = (text: string) =>
    text.replace(/\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)\}/g, (whole, name: string) => env[name] ?? whole);
  const strings = (record: unknown) =>
    isRecord(record)
      ? Object.fromEntries(
          Object.entries(record)
            .filter(([, v]) => typeof v === "string")
            .map(([k, v]) => [k, fill(v as string)]),
        )
      : undefined;
  const url =
    typeof raw.url === "string" ? raw.url : typeof raw.serverUrl === "string" ? raw.serverUrl : undefined;
  if (raw.type === "sse" || (url !== undefined && /\/sse\/?$/.test(url) && raw.type !== "http")) {
    return { ...server, problem: "legacy SSE transport (not scanned)" };
  }
  if (typeof raw.command === "string") {
    const args = Array.isArray(raw.args)
      ? raw.args.filter((a): a is string => typeof a === "string").map(fill)
      : [];
    const unresolved = [raw.command, ...args].find((part) => /\$\{input:/.test(part));
    if (unresolved) return { ...server, problem: `needs an interactive input (\`${unresolved}\`)` };
    server.spec = {
      command: fill(raw.command),
      args,
      env: strings(raw.env),
      cwd: typeof raw.cwd === "string" ? fill(raw.cwd) : undefined,
    };
    return server;
  }
  if (url !== undefined) {
    server.spec = { url: fill(url), headers: strings(raw.headers) };
    return server;
  }
  return { ...server, problem: "neither `command` nor `url`" };
}

function pick(value: unknown): Record<string, unknown> | undefined {
  return isRecord(value) ? value : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
