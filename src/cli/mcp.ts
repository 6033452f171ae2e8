import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Warden, WardenOptions } from "../gateway/index.js";
import { Warden as WardenClass } from "../gateway/index.js";
import { AUDIT_KEY_OPTION, CliError, parseFlags, STORE_OPTION } from "./util.js";
import type { Command } from "./util.js";
import { help } from "./validate.js";

const PIN_FLAGS = {
  pins: { type: "string" },
  "audit-key-file": { type: "string" },
} as const;

const WARDEN_FLAGS = {
  policy: { type: "string", short: "p" },
  audit: { type: "string" },
  store: { type: "string" },
  "approval-wait": { type: "string" },
  ...PIN_FLAGS,
} as const;

const USAGE = {
  proxy:
    "toolwarden mcp proxy -p POLICY [--server-id ID] [--agent ID] [--session ID] [--audit LOG] [--audit-key-file FILE] [--pins FILE] [--store URL] [--approval-wait SECONDS] [--max-line BYTES] [--observe] (-- COMMAND [ARGS...] | --url URL)",
  gateway: "toolwarden mcp gateway -c GATEWAY.yaml",
  pins: "toolwarden mcp pins list [--server ID] [--json] | approve --server-id ID [--tool NAME...] (-- COMMAND... | --url URL | -c GATEWAY.yaml) | revoke --server-id ID [--tool NAME...]   [--pins FILE] [--audit-key-file FILE]",
  scan: "toolwarden mcp scan [CONFIG...] [--json] [--write-policy FILE] [--write-pins] [--pins FILE] [--timeout SECONDS]",
};

const PINS_OPTION =
  "--pins FILE             the pin ledger (TOOLWARDEN_PINS; default ~/.local/state/toolwarden/pins.jsonl)";

/** `--help` lines per subcommand: what each flag takes. */
const OPTIONS: Record<keyof typeof USAGE, string[]> = {
  proxy: [
    "-p, --policy FILE       the policy",
    "--server-id ID          the server's id in the policy (`server:` conditions, `servers.<id>`) and in pins",
    "--agent ID              the agent id calls are decided for",
    "--session ID            the session calls belong to (with --store, a restarted proxy continues it)",
    "--audit LOG             the JSONL audit log (it needs the audit key)",
    AUDIT_KEY_OPTION,
    PINS_OPTION,
    STORE_OPTION,
    "--approval-wait SECONDS how long a call that needs approval waits for a human (default 0: refuse at once)",
    "--max-line BYTES        longest JSON-RPC line accepted from either side (e.g. 4MiB)",
    "--observe               decide and audit, but let every call run",
    "-- COMMAND [ARGS...]    the stdio server to start, or",
    "--url URL               a Streamable HTTP server to connect to",
  ],
  gateway: [
    "-c, --config FILE       the gateway config (YAML): listen, policy, audit, audit_key_file, store, pins, servers, tokens",
  ],
  pins: [
    "list | approve | revoke what to do",
    "--server ID, --server-id ID  the server whose pins to list, approve or revoke",
    "--tool NAME             one tool (repeatable; default: all the server's tools)",
    "--json                  list as JSON",
    "-- COMMAND..., --url URL, -c GATEWAY.yaml  approve: where to read the server's current tools",
    "--reason TEXT, --by NAME  recorded in the ledger",
    PINS_OPTION,
    AUDIT_KEY_OPTION,
  ],
  scan: [
    "CONFIG...               client config files (default: the known locations of Claude Desktop, Claude Code, Cursor, VS Code, ...)",
    "--json                  the report as JSON",
    "--write-policy FILE     write a starting policy for the servers found",
    "--write-pins            pin the tools listed now",
    PINS_OPTION,
    AUDIT_KEY_OPTION,
    "--timeout SECONDS       how long to wait for each server to list its tools",
  ],
};

export const mcp: Command = {
  summary: "MCP: stdio proxy, HTTP gateway, tool pins, scan of client configs",
  usage: `toolwarden mcp proxy|gateway|pins|scan ...\n  ${Object.values(USAGE).join("\n  ")}`,
  async run(argv) {
    const [sub, ...rest] = argv;
    switch (sub) {
      case "proxy":
        return proxy(rest);
      case "gateway":
        return gateway(rest);
      case "pins":
        return pins(rest);
      case "scan":
        return scan(rest);
      case undefined:
      case "--help":
      case "-h":
      case "help":
        return help(this);
      default:
        throw new CliError(`unknown subcommand \`${sub}\`\nusage: ${this.usage}`);
    }
  },
};

function seconds(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new CliError(`${flag} takes a number of seconds, not \`${value}\``);
  return n * 1000;
}

/** A Warden for the MCP commands: policy, optional audit log, optional shared store, approval wait. */
async function openMcpWarden(values: {
  policy?: string;
  audit?: string;
  store?: string;
  "audit-key-file"?: string;
  "approval-wait"?: string;
  observe?: boolean;
}): Promise<{ warden: Warden; approvalWait: number }> {
  if (!values.policy) throw new CliError("no policy given: pass -p POLICY");
  const approvalWait = seconds(values["approval-wait"], "--approval-wait") ?? 0;
  const options: WardenOptions = { approvals: { wait: approvalWait }, observe: values.observe };
  if (values.store) {
    const { createStateStore } = await import("../stores/create.js");
    options.store = await createStateStore(values.store);
  }
  if (values.audit) {
    const { JsonlAuditSink } = await import("../audit/jsonl-sink.js");
    options.audit = await JsonlAuditSink.open({ path: values.audit, keyFile: values["audit-key-file"] });
  }
  const warden = WardenClass.fromFile(values.policy, options);
  await warden.ready();
  return { warden, approvalWait };
}

async function openLedger(values: { pins?: string; "audit-key-file"?: string }, readOnly = false) {
  const { PinLedger, defaultPinsPath } = await import("../adapters/mcp/index.js");
  const path = resolve(values.pins || defaultPinsPath());
  return PinLedger.open(path, { keyFile: values["audit-key-file"], readOnly });
}

/** A stable default id for a server command: the package or script name (`npx -y @scope/server-x` -> `server-x`). */
export function serverIdFor(command: string[]): string {
  const runners = new Set([
    "npx",
    "node",
    "uvx",
    "uv",
    "python",
    "python3",
    "bunx",
    "bun",
    "deno",
    "pnpm",
    "yarn",
    "docker",
    "tsx",
  ]);
  const [program, ...args] = command;
  const base = (value: string) =>
    value
      .replace(/@[^/@]*$/, "")
      .split(/[\\/]/)
      .filter(Boolean)
      .pop()
      ?.replace(/\.(m?[jt]s|py)$/, "") ?? value;
  const name = runners.has(base(program))
    ? (args.find((arg) => !arg.startsWith("-") && arg !== "run" && arg !== "dlx") ?? program)
    : program;
  return (
    base(name)
      .replace(/[^A-Za-z0-9_-]+/g, "-")
      .replace(/^-+|-+$/g, "") || "server"
  );
}

async function proxy(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    argv,
    {
      ...WARDEN_FLAGS,
      "server-id": { type: "string" },
      agent: { type: "string" },
      session: { type: "string" },
      url: { type: "string" },
      "max-line": { type: "string" },
      observe: { type: "boolean" },
    },
    USAGE.proxy,
  );
  if (values.help)
    return help({
      summary: "an MCP server over stdio in front of one real server; every tools/call is decided",
      usage: USAGE.proxy,
      options: OPTIONS.proxy,
    });
  if (!positionals.length && !values.url)
    throw new CliError(
      `no server to proxy: give \`-- COMMAND [ARGS...]\` or \`--url URL\`\nusage: ${USAGE.proxy}`,
    );
  const { McpProxy, inheritedEnv, LineTransport, parseByteSize, DEFAULT_MAX_LINE } = await import(
    "../adapters/mcp/index.js"
  );
  const maxLine = values["max-line"] === undefined ? DEFAULT_MAX_LINE : parseByteSize(values["max-line"]);
  if (maxLine === undefined)
    throw new CliError(`--max-line takes a size in bytes (e.g. 10MiB), not \`${values["max-line"]}\``);
  const upstream = values.url
    ? { url: values.url }
    : { command: positionals[0], args: positionals.slice(1), env: inheritedEnv() };
  const serverId =
    values["server-id"] ?? (values.url ? new URL(values.url).hostname : serverIdFor(positionals));
  const log = (line: string) => process.stderr.write(`${line}\n`);
  if (!values.audit)
    log(
      "toolwarden mcp proxy: no --audit LOG: decisions are not audited (pass --audit LOG and the audit key to keep a signed trail)",
    );
  const ledger = await openLedger(values);
  const { warden, approvalWait } = await openMcpWarden(values);
  try {
    const downstream = new LineTransport(process.stdin, process.stdout, {
      maxLine,
      overLimit: (limit) => `the client sent a line of more than ${limit} bytes (raise it with --max-line)`,
    });
    const running = await McpProxy.serve(downstream, {
      warden,
      server: serverId,
      upstream,
      ledger,
      agent: values.agent ? { id: values.agent } : undefined,
      session: values.session,
      gate: { approvals: { wait: approvalWait } },
      maxLine,
      log,
    });
    // Close cleanly (the upstream is stopped and the audit log flushed) on end of input or a signal.
    const stop = () => void running.close();
    process.stdin.once("end", stop);
    process.stdin.once("close", stop);
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
    await running.closed;
    if (downstream.reason && downstream.reason !== "closed its output")
      log(`toolwarden mcp proxy: ${downstream.reason}`);
    return running.failure ? 1 : 0;
  } finally {
    await warden.close();
    // Nothing more to do; do not let a stray handle of the upstream keep the process alive.
    setTimeout(() => process.exit(), 1000).unref();
  }
}

async function gateway(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, { config: { type: "string", short: "c" } }, USAGE.gateway);
  if (values.help)
    return help({
      summary: "one Streamable HTTP endpoint in front of several MCP servers, with bearer tokens",
      usage: USAGE.gateway,
      options: OPTIONS.gateway,
    });
  if (!values.config) throw new CliError(`no gateway config given\nusage: ${USAGE.gateway}`);
  const { loadGatewayConfig, McpGateway } = await import("../adapters/mcp/index.js");
  const config = loadGatewayConfig(values.config);
  const gateway = await McpGateway.start(config, { log: (line) => process.stderr.write(`${line}\n`) });
  process.stderr.write(
    `toolwarden mcp gateway: listening on ${gateway.url} (${Object.keys(config.servers).length} servers, ${config.tokens.length} tokens)\n`,
  );
  await new Promise<void>((resolveStop) => {
    const stop = () => resolveStop();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  await gateway.close();
  return 0;
}

async function pins(argv: string[]): Promise<number> {
  const [action, ...rest] = argv;
  const { values, positionals } = parseFlags(
    rest,
    {
      ...PIN_FLAGS,
      "server-id": { type: "string" },
      server: { type: "string" },
      tool: { type: "string", multiple: true },
      json: { type: "boolean" },
      url: { type: "string" },
      config: { type: "string", short: "c" },
      reason: { type: "string" },
      by: { type: "string" },
    },
    USAGE.pins,
  );
  if (values.help || !action || action === "--help" || action === "-h")
    return help({
      summary: "list, approve or revoke pinned MCP tool fingerprints",
      usage: USAGE.pins,
      options: OPTIONS.pins,
    });
  const ledger = await openLedger(values, action === "list");
  const serverId = values["server-id"] ?? values.server;
  const by = values.by ?? process.env.USER ?? "cli";
  if (action === "list") {
    const list = ledger.list(serverId);
    if (values.json)
      process.stdout.write(
        `${JSON.stringify(
          list.map(({ inputSchema: _s, ...pin }) => pin),
          null,
          2,
        )}\n`,
      );
    else {
      const rows = list.map((pin) => [
        pin.server,
        pin.tool,
        pin.descriptionHash?.slice(0, 12) ?? "",
        pin.schemaHash?.slice(0, 12) ?? "",
        pin.by,
        pin.time,
      ]);
      process.stdout.write(`${textTable(["server", "tool", "description", "schema", "by", "time"], rows)}\n`);
      process.stdout.write(
        `${list.length} pins in ${ledger.path} (${ledger.size} entries, ${ledger.signed ? "signed" : ledger.unverified ? "signatures not checked: no audit key" : "unsigned: set TOOLWARDEN_AUDIT_KEY to sign"})\n`,
      );
    }
    return 0;
  }
  if (!serverId) throw new CliError(`${action} needs --server-id ID\nusage: ${USAGE.pins}`);
  if (action === "revoke") {
    const names = values.tool ?? ledger.list(serverId).map((pin) => pin.tool);
    const written = await ledger.revoke(
      names.map((tool) => ({ server: serverId, tool })),
      `revoke:${by}`,
      values.reason,
    );
    process.stdout.write(`revoked ${written.length} pins of \`${serverId}\`\n`);
    return 0;
  }
  if (action === "approve") {
    const { approveTools } = await import("../adapters/mcp/index.js");
    const upstream = await upstreamFor(serverId, positionals, values);
    const result = await approveTools(ledger, serverId, upstream, {
      tools: values.tool,
      by: `approve:${by}`,
      reason: values.reason,
    });
    for (const line of result.changes) process.stdout.write(`${line}\n`);
    process.stdout.write(`pinned ${result.written.length} of ${result.listed} tools of \`${serverId}\`\n`);
    return result.missing.length ? 1 : 0;
  }
  throw new CliError(`unknown pins action \`${action}\`\nusage: ${USAGE.pins}`);
}

async function upstreamFor(serverId: string, command: string[], values: { url?: string; config?: string }) {
  const { inheritedEnv, loadGatewayConfig } = await import("../adapters/mcp/index.js");
  if (values.url) return { url: values.url };
  if (command.length) return { command: command[0], args: command.slice(1), env: inheritedEnv() };
  if (values.config) {
    const spec = loadGatewayConfig(values.config).servers[serverId];
    if (!spec) throw new CliError(`server \`${serverId}\` is not in \`${values.config}\``);
    return spec;
  }
  throw new CliError(
    `approve needs the server to read its tools from: \`-- COMMAND...\`, \`--url URL\` or \`-c GATEWAY.yaml\`\nusage: ${USAGE.pins}`,
  );
}

async function scan(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    argv,
    {
      ...PIN_FLAGS,
      json: { type: "boolean" },
      "write-policy": { type: "string" },
      "write-pins": { type: "boolean" },
      timeout: { type: "string" },
    },
    USAGE.scan,
  );
  if (values.help)
    return help({
      summary: "read MCP client configs, start each server, flag risky tools",
      usage: USAGE.scan,
      options: OPTIONS.scan,
    });
  const { existingConfigLocations, readClientConfig, scanServers, starterPolicy } = await import(
    "../adapters/mcp/index.js"
  );
  const locations = positionals.length
    ? positionals.map((file) => ({ client: "file", file }))
    : existingConfigLocations();
  if (!locations.length)
    throw new CliError(
      "no MCP client config found (Claude Desktop, Cursor, VS Code, Windsurf); pass config files",
    );
  const configured = locations.flatMap(({ client, file }) => {
    try {
      return readClientConfig(file, client);
    } catch (error) {
      throw new CliError((error as Error).message);
    }
  });
  process.stderr.write(`scanning ${configured.length} servers from ${locations.length} config files\n`);
  const ledger = await openLedger(values);
  const results = await scanServers(configured, {
    timeout: seconds(values.timeout, "--timeout") ?? 30_000,
    ledger,
    onProgress: (event) => {
      if (event.state === "starting") process.stderr.write(`  starting ${event.server}…\n`);
      else
        process.stderr.write(
          `  [${event.done}/${event.total}] ${event.server}: ${event.state === "done" ? "" : `${event.state}: `}${event.detail}\n`,
        );
    },
  });
  if (values["write-policy"]) {
    writeFileSync(values["write-policy"], starterPolicy(results));
    process.stderr.write(`wrote a starting policy to ${values["write-policy"]}\n`);
  }
  if (values["write-pins"]) {
    const tools = results.flatMap((server) =>
      server.tools
        .filter((tool) => tool.level !== "high")
        .map((tool) => ({ server: server.id, tool: tool.listed })),
    );
    const written = await ledger.pin(tools, "scan");
    process.stderr.write(
      `pinned ${written.length} tools in ${ledger.path} (flagged tools are left unpinned)\n`,
    );
  }
  const flagged = results.reduce(
    (n, server) => n + server.tools.filter((tool) => tool.level === "high").length,
    0,
  );
  if (values.json) {
    const out = results.map((server) => ({
      ...server,
      tools: server.tools.map(({ listed: _listed, ...tool }) => tool),
    }));
    process.stdout.write(`${JSON.stringify({ servers: out, flagged }, null, 2)}\n`);
  } else {
    const rows = results.flatMap((server) =>
      server.status !== "ok"
        ? [[server.id, "-", server.status, "-", "-", server.error ?? ""]]
        : server.tools.map((tool) => [
            server.id,
            tool.name,
            tool.level,
            tool.capabilities.join(",") || "-",
            hints(tool.annotations),
            tool.findings
              .filter((f) => !f.code.startsWith("capability."))
              .map((f) => f.message)
              .join("; ") || "",
          ]),
    );
    process.stdout.write(
      `${textTable(
        ["server", "tool", "risk", "can", "hints", "findings"],
        rows.map((row) => row.map((cell) => truncate(String(cell), 90))),
      )}\n`,
    );
    process.stdout.write(
      `${results.length} servers, ${results.reduce((n, s) => n + s.tools.length, 0)} tools, ${flagged} flagged\n`,
    );
  }
  return flagged ? 1 : 0;
}

function truncate(text: string, width: number): string {
  const flat = text.replace(/\s+/g, " ");
  return flat.length > width ? `${flat.slice(0, width - 1)}…` : flat;
}

/** Rows as left-aligned text columns (the shared `table` right-aligns, for numbers). */
function textTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  const line = (row: string[]) =>
    row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

/** A tool's MCP annotations in the risk table: `ro` read-only, `destructive`, `open-world`, `idempotent`. */
function hints(
  annotations:
    | { readOnlyHint?: boolean; destructiveHint?: boolean; openWorldHint?: boolean; idempotentHint?: boolean }
    | undefined,
): string {
  if (!annotations) return "-";
  const out: string[] = [];
  if (annotations.readOnlyHint === true) out.push("read-only");
  if (annotations.destructiveHint === true) out.push("destructive");
  if (annotations.openWorldHint === true) out.push("open-world");
  if (annotations.idempotentHint === true) out.push("idempotent");
  return out.join(",") || "-";
}
