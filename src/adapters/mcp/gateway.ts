import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import type { IncomingMessage, Server as HttpServer, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Client } from "@modelcontextprotocol/client";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import {
  CallToolRequestSchema,
  isInitializeRequest,
  ListToolsRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";
import type { Agent } from "../../core/index.js";
import { Warden } from "../../gateway/index.js";
import type { WardenOptions } from "../../gateway/index.js";
import { TokenTable } from "./auth.js";
import { ToolCatalog } from "./catalog.js";
import { refusal, ToolGate } from "./gate.js";
import type { GateOptions } from "./gate.js";
import type { GatewayConfig } from "./gateway-config.js";
import { PinLedger } from "./pins.js";
import { NotificationPump } from "./pump.js";
import { relay, relayedParams } from "./relay.js";
import { connectUpstream, describeUpstream } from "./upstream.js";
import type { UpstreamSpec } from "./upstream.js";

/** Joins a server id and a tool name into the name clients see: `github__create_issue`. */
export const TOOL_SEPARATOR = "__";

export interface GatewayOptions {
  warden: Warden;
  servers: Record<string, UpstreamSpec>;
  tokens: ReadonlyArray<{ token: string; agent: Agent }>;
  ledger?: PinLedger;
  host?: string;
  /** 0 picks a free port. Default 8080. */
  port?: number;
  path?: string;
  gate?: GateOptions;
  /** A session idle this long is closed (ms). Default 30 minutes. */
  idleTimeout?: number;
  /** Longest wait for one upstream request (ms), reset by progress. Default 10 minutes. */
  requestTimeout?: number;
  log?: (line: string) => void;
}

interface Upstream {
  id: string;
  client: Client;
  catalog: ToolCatalog;
}

interface ClientSession {
  transport: StreamableHTTPServerTransport;
  server: Server;
  token: number;
  agent: Agent;
  lastSeen: number;
}

const MAX_BODY = 4 * 1024 * 1024;

/**
 * One Streamable HTTP endpoint in front of several MCP servers. Clients authenticate with a bearer
 * token that names their agent; each client connection is one MCP session (and one toolwarden
 * session: its labels, counters and approvals), bound to the token that opened it. Tools are
 * namespaced `<server>__<tool>`; the policy sees the plain tool name with `server: <id>`.
 * Upstreams are shared by all sessions; their `tools/list_changed` is re-checked against the pins
 * and passed on to every session.
 */
export class McpGateway {
  private readonly upstreams = new Map<string, Upstream>();
  private readonly sessions = new Map<string, ClientSession>();
  private readonly tokens: TokenTable;
  private readonly gate: ToolGate;
  private http: HttpServer | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private onClose: (() => Promise<void>) | undefined;
  url = "";

  private constructor(private readonly options: GatewayOptions) {
    this.tokens = new TokenTable(options.tokens);
    this.gate = new ToolGate(options.warden, options.gate);
  }

  /** Connects every upstream, then listens. Rejects (closing what it opened) if an upstream cannot start. */
  static async listen(options: GatewayOptions): Promise<McpGateway> {
    const gateway = new McpGateway(options);
    try {
      await gateway.connectUpstreams();
      await gateway.listenHttp();
    } catch (error) {
      await gateway.close();
      throw error;
    }
    return gateway;
  }

  /** Opens the policy, audit log, store and pin ledger a config names, then `listen`s; `close` closes them all. */
  static async start(
    config: GatewayConfig,
    options: { log?: (line: string) => void } = {},
  ): Promise<McpGateway> {
    const wardenOptions: WardenOptions = { approvals: { wait: config.approvalWait } };
    if (config.store) {
      const { createStateStore } = await import("../../stores/create.js");
      wardenOptions.store = await createStateStore(config.store);
    }
    if (config.audit) {
      const { JsonlAuditSink } = await import("../../audit/jsonl-sink.js");
      try {
        wardenOptions.audit = await JsonlAuditSink.open({ path: config.audit, keyFile: config.auditKeyFile });
      } catch (error) {
        await wardenOptions.store?.close();
        throw error;
      }
    }
    const warden = Warden.fromFile(config.policy, wardenOptions);
    try {
      const ledger = await PinLedger.open(config.pins, { keyFile: config.auditKeyFile });
      const gateway = await McpGateway.listen({
        warden,
        servers: config.servers,
        tokens: config.tokens,
        ledger,
        host: config.host,
        port: config.port,
        path: config.path,
        gate: { approvals: { wait: config.approvalWait } },
        log: options.log,
      });
      gateway.onClose = () => warden.close();
      return gateway;
    } catch (error) {
      await warden.close();
      throw error;
    }
  }

  private async connectUpstreams(): Promise<void> {
    const { warden, ledger } = this.options;
    await Promise.all(
      Object.entries(this.options.servers).map(async ([id, spec]) => {
        let client: Client;
        try {
          client = await connectUpstream(spec, { info: { name: "toolwarden-gateway", version: "0.1.0" } });
        } catch (error) {
          throw new Error(
            `cannot start server \`${id}\` (${describeUpstream(spec)}): ${(error as Error).message}`,
          );
        }
        const upstream: Upstream = { id, client, catalog: new ToolCatalog(client, id, warden, ledger) };
        this.upstreams.set(id, upstream);
        client.setNotificationHandler("notifications/tools/list_changed", async () => {
          await upstream.catalog
            .refresh()
            .catch((error) =>
              this.log(`server \`${id}\`: cannot re-list tools: ${(error as Error).message}`),
            );
          for (const session of this.sessions.values())
            await session.server.sendToolListChanged().catch(() => {});
        });
        client.onclose = () => this.log(`server \`${id}\` closed its connection`);
        await upstream.catalog.refresh();
      }),
    );
  }

  private async listenHttp(): Promise<void> {
    const http = createServer((req, res) => {
      this.handle(req, res).catch((error) => {
        this.log(`request failed: ${(error as Error).message}`);
        if (!res.headersSent) reply(res, 500, "internal error");
      });
    });
    this.http = http;
    await new Promise<void>((resolve, reject) => {
      http.once("error", reject);
      http.listen(this.options.port ?? 8080, this.options.host ?? "127.0.0.1", () => resolve());
    });
    const address = http.address() as AddressInfo;
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
    this.url = `http://${host}:${address.port}${this.options.path ?? "/mcp"}`;
    const idle = this.options.idleTimeout ?? 30 * 60_000;
    this.sweeper = setInterval(() => this.sweep(idle), Math.min(idle, 60_000));
    this.sweeper.unref();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? "/", "http://gateway").pathname;
    if (path !== (this.options.path ?? "/mcp")) return reply(res, 404, "not found");
    const caller = this.tokens.match(req.headers.authorization);
    if (!caller) {
      res.setHeader("WWW-Authenticate", 'Bearer realm="toolwarden"');
      return reply(res, 401, "unauthorized: a valid bearer token is required", -32001);
    }
    const sessionId = req.headers["mcp-session-id"];
    if (typeof sessionId === "string") {
      const session = this.sessions.get(sessionId);
      if (!session) return reply(res, 404, "session not found", -32001);
      if (session.token !== caller.index)
        return reply(res, 403, "this session belongs to another token", -32001);
      session.lastSeen = Date.now();
      return session.transport.handleRequest(req, res);
    }
    if (req.method !== "POST") return reply(res, 400, "no session: send initialize first");
    let body: unknown;
    try {
      body = JSON.parse(await readBody(req));
    } catch (error) {
      return reply(res, 400, `parse error: ${(error as Error).message}`, -32700);
    }
    const initializing = Array.isArray(body) ? body.some(isInitializeRequest) : isInitializeRequest(body);
    if (!initializing) return reply(res, 400, "no session: send initialize first");
    const session = await this.openSession(caller.index, caller.agent);
    await session.transport.handleRequest(req, res, body);
  }

  private async openSession(token: number, agent: Agent): Promise<ClientSession> {
    const { warden } = this.options;
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        this.sessions.set(id, session);
        warden.session({ id, agent });
      },
    });
    const server = new Server(
      { name: "toolwarden-gateway", version: "0.1.0" },
      { capabilities: { tools: { listChanged: true } } },
    );
    const session: ClientSession = { transport, server, token, agent, lastSeen: Date.now() };
    const timeout = this.options.requestTimeout ?? 10 * 60_000;
    const pump = new NotificationPump();

    server.setRequestHandler(ListToolsRequestSchema, async () => {
      const lists = await Promise.all(
        [...this.upstreams.values()].map(async (upstream) => {
          await upstream.catalog.refresh();
          return upstream.catalog
            .visible()
            .map((tool) => ({ ...tool, name: `${upstream.id}${TOOL_SEPARATOR}${tool.name}` }));
        }),
      );
      return { tools: lists.flat() as never };
    });
    server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
      const name = request.params.name;
      const cut = name.indexOf(TOOL_SEPARATOR);
      const upstream = cut > 0 ? this.upstreams.get(name.slice(0, cut)) : undefined;
      if (!upstream) {
        return refusal({
          verdict: "deny",
          rule: "gateway.unknown_tool",
          reason: `no server offers \`${name}\` (tools are named <server>${TOOL_SEPARATOR}<tool>)`,
          findings: [],
          labels: [],
          tool: name,
        });
      }
      const tool = name.slice(cut + TOOL_SEPARATOR.length);
      const wardenSession = warden.session({
        id: extra.sessionId ?? transport.sessionId ?? randomUUID(),
        agent,
      });
      return this.gate.call(
        upstream.catalog,
        { server: upstream.id, session: wardenSession, agent },
        tool,
        request.params.arguments,
        () =>
          relay(
            request.params,
            { signal: extra.signal, notify: extra.sendNotification },
            timeout,
            pump,
            (options) =>
              upstream.client.request(
                { method: "tools/call", params: { ...relayedParams(request.params), name: tool } },
                options,
              ) as never,
          ),
      );
    });
    transport.onclose = () => {
      const id = transport.sessionId;
      if (id && this.sessions.get(id) === session) {
        this.sessions.delete(id);
        warden.endSession(id);
      }
    };
    await server.connect(transport);
    return session;
  }

  private sweep(idle: number): void {
    const now = Date.now();
    for (const session of this.sessions.values()) {
      if (now - session.lastSeen > idle) void session.transport.close();
    }
  }

  /** Sessions open now. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  private log(line: string): void {
    this.options.log?.(`toolwarden mcp gateway: ${line}`);
  }

  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    await Promise.allSettled([...this.sessions.values()].map((session) => session.transport.close()));
    if (this.http) {
      const http = this.http;
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    }
    await Promise.allSettled([...this.upstreams.values()].map((upstream) => upstream.client.close()));
    await this.onClose?.();
  }
}

function reply(res: ServerResponse, status: number, message: string, code = -32000): void {
  res.statusCode = status;
  res.setHeader("Content-Type", "application/json");
  res.end(JSON.stringify({ jsonrpc: "2.0", error: { code, message }, id: null }));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new Error(`request body over ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}
