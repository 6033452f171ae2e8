import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import type { IncomingMessage, Server as HttpServer, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import type { Client } from "@modelcontextprotocol/client";
import {
  createMcpHandler,
  isInitializeRequest,
  isLegacyRequest,
  ProtocolError,
  ProtocolErrorCode,
  Server,
  UriTemplate,
  WebStandardStreamableHTTPServerTransport,
} from "@modelcontextprotocol/server";
import type { AuthInfo, McpHttpHandler } from "@modelcontextprotocol/server";
import type { Agent } from "../../core/index.js";
import { Warden } from "../../gateway/index.js";
import type { Session, WardenOptions } from "../../gateway/index.js";
import { TokenTable } from "./auth.js";
import { ToolCatalog } from "./catalog.js";
import { refusal, ToolGate } from "./gate.js";
import type { GateOptions } from "./gate.js";
import type { GatewayConfig } from "./gateway-config.js";
import { PinLedger } from "./pins.js";
import { promptArgs, resourceArgs } from "./proxy.js";
import { NotificationPump } from "./pump.js";
import { relay, relayedParams, roundTripOptions, withRoundTrip } from "./relay.js";
import type { RelayContext } from "./relay.js";
import { connectUpstream, describeUpstream, isHttpUpstream, upstreamTransport } from "./upstream.js";
import type { UpstreamSpec } from "./upstream.js";
import { toolwardenVersion } from "../../core/version.js";

/** Joins a server id and a tool name into the name clients see: `github__create_issue`. */
export const TOOL_SEPARATOR = "__";

/**
 * The request header that names a client's toolwarden session, so that every gateway replica on
 * one state store (and every new connection, and a reconnect after a restart) continues it.
 */
export const SESSION_HEADER = "toolwarden-session";
const SESSION_NAME = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The toolwarden session of a client request: the one the `Toolwarden-Session` header names,
 * scoped to the token's agent (another agent naming it gets a session of its own), or undefined
 * when the header is absent. Throws a message for a malformed header.
 */
function namedSession(req: IncomingMessage, agent: Agent): string | undefined {
  const named = req.headers[SESSION_HEADER];
  if (named === undefined) return undefined;
  if (typeof named !== "string" || !SESSION_NAME.test(named))
    throw new Error("`Toolwarden-Session` must be 1 to 128 letters, digits, `.`, `_`, `:` or `-`");
  return `mcp-gateway:${encodeURIComponent(String(agent.id))}:${named}`;
}

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
  spec: UpstreamSpec;
  /** The connection every client shares (listing, and calls to a stateless server). */
  client: Client;
  catalog: ToolCatalog;
  /** The server keeps state per connection (a 2025 Streamable HTTP server that issued a session id): each client session gets its own. */
  stateful: boolean;
  /** Templates of its resources, to route a `resources/read` of a URI it did not list. */
  templates: UriTemplate[];
}

interface ClientSession {
  transport: WebStandardStreamableHTTPServerTransport;
  server: Server;
  token: number;
  agent: Agent;
  lastSeen: number;
  /** Own upstream connections to stateful servers, by server id. */
  upstreams: Map<string, Promise<Client>>;
}

/** Who is asking, for the handlers of one SDK server instance. */
interface Caller {
  agent: Agent;
  /** The toolwarden session: the one `Toolwarden-Session` names, else one per 2025 MCP session and one per agent for 2026 requests (that protocol has no sessions). */
  session: () => Session;
  /** The connection to use for a server (own for a stateful server in a 2025 session). */
  client: (upstream: Upstream) => Promise<Client>;
  pump: NotificationPump;
}

const MAX_BODY = 4 * 1024 * 1024;

/**
 * One Streamable HTTP endpoint in front of several MCP servers. Clients authenticate with a bearer
 * token that names their agent. Both protocol generations (v2 SDK): a 2025 client opens an MCP
 * session with `initialize` (one toolwarden session: its labels, counters and approvals, bound to
 * the token that opened it); a 2026-07-28 client's requests are served one by one (`server/discover`
 * included) in one toolwarden session per agent. A `Toolwarden-Session` header names the session
 * instead, so replicas and reconnections continue it. Tools and prompts are namespaced
 * `<server>__<name>`; resources keep their URIs and are routed to the server that lists them (or
 * whose template matches). The policy sees the plain tool name with `server: <id>`;
 * `resources/read` and `prompts/get` are decided as calls of those names. Upstreams are shared by
 * all sessions, except a stateful one (a 2025 HTTP server with sessions): each client session gets
 * its own connection to it. `tools/list_changed` is re-checked against the pins and passed on.
 */
export class McpGateway {
  private readonly upstreams = new Map<string, Upstream>();
  private readonly sessions = new Map<string, ClientSession>();
  private readonly tokens: TokenTable;
  private readonly gate: ToolGate;
  private readonly resourceOwners = new Map<string, string>();
  /** The transport under each upstream connection, for why it ended. */
  private readonly ended = new WeakMap<Client, object>();
  private modern: McpHttpHandler | undefined;
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
          client = await this.connect(id, spec);
        } catch (error) {
          throw new Error(
            `cannot start server \`${id}\` (${describeUpstream(spec)}): ${(error as Error).message}`,
          );
        }
        const stateful =
          isHttpUpstream(spec) &&
          client.getProtocolEra() === "legacy" &&
          client.transport?.sessionId !== undefined;
        const upstream: Upstream = {
          id,
          spec,
          client,
          catalog: new ToolCatalog(client, id, warden, ledger, true),
          stateful,
          templates: [],
        };
        this.upstreams.set(id, upstream);
        client.setNotificationHandler("notifications/tools/list_changed", async () => {
          await upstream.catalog
            .refresh()
            .catch((error) =>
              this.log(`server \`${id}\`: cannot re-list tools: ${(error as Error).message}`),
            );
          for (const session of this.sessions.values())
            await session.server.sendToolListChanged().catch(() => {});
          this.modern?.notify.toolsChanged();
        });
        // A 2025 server's own question cannot be routed to one of the clients sharing this connection: decline it.
        client.setRequestHandler("elicitation/create", async () => ({ action: "decline" }));
        client.onclose = () =>
          this.log(this.endReason(client, id) ?? `server \`${id}\` closed its connection`);
        if (client.getProtocolEra() === "modern" && client.getServerCapabilities()?.tools?.listChanged)
          await client.listen({ toolsListChanged: true }).catch(() => {});
        await upstream.catalog.refresh();
      }),
    );
  }

  private connect(id: string, spec: UpstreamSpec): Promise<Client> {
    const transport = upstreamTransport(spec, { name: id });
    // Elicitation is declared so a 2026 server may ask the user (input_required); the client's own
    // capabilities decide whether it can answer.
    const connected = connectUpstream(spec, {
      info: { name: "toolwarden-gateway", version: toolwardenVersion() },
      capabilities: { elicitation: { form: {} } },
      name: id,
      transport,
    });
    return connected.then((client) => {
      this.ended.set(client, transport);
      return client;
    });
  }

  /** Why an upstream connection ended (a stdio server's exit, a line over the limit), if it did. */
  private endReason(client: Client, id: string): string | undefined {
    const reason = (this.ended.get(client) as { reason?: string } | undefined)?.reason;
    return reason ?? (client.transport ? undefined : `server \`${id}\` closed its connection`);
  }

  private async listenHttp(): Promise<void> {
    this.modern = createMcpHandler(
      (ctx) => {
        const extra = (ctx.authInfo?.extra ?? {}) as { agent?: Agent; session?: string };
        const agent = extra.agent ?? { id: "unknown" };
        // Without a named session, one per agent: every replica derives the same id.
        const id = extra.session ?? `mcp-gateway:agent:${encodeURIComponent(String(agent.id))}`;
        return this.buildServer({
          agent,
          session: () => this.options.warden.session({ id, agent }),
          client: async (upstream) => upstream.client,
          pump: new NotificationPump(),
        });
      },
      { legacy: "reject", maxRequestBodySize: MAX_BODY, onerror: () => {} },
    );
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
    let named: string | undefined;
    try {
      named = namedSession(req, caller.agent);
    } catch (error) {
      return reply(res, 400, (error as Error).message, -32600);
    }
    const sessionId = req.headers["mcp-session-id"];
    if (typeof sessionId === "string") {
      const session = this.sessions.get(sessionId);
      if (!session) return reply(res, 404, "session not found", -32001);
      if (session.token !== caller.index)
        return reply(res, 403, "this session belongs to another token", -32001);
      session.lastSeen = Date.now();
      const { request, body } = await webRequest(req);
      return send(res, await session.transport.handleRequest(request, { parsedBody: body }));
    }
    if (req.method !== "POST") return reply(res, 400, "no session: send initialize first");
    let parsed: { request: Request; body: unknown };
    try {
      parsed = await webRequest(req);
    } catch (error) {
      return reply(res, 400, `parse error: ${(error as Error).message}`, -32700);
    }
    const { request, body } = parsed;
    if (!(await isLegacyRequest(request, body))) {
      const authInfo: AuthInfo = {
        token: "bearer",
        clientId: String(caller.agent.id),
        scopes: [],
        extra: { index: caller.index, agent: caller.agent, session: named },
      };
      return send(res, await (this.modern as McpHttpHandler).fetch(request, { parsedBody: body, authInfo }));
    }
    const initializing = Array.isArray(body) ? body.some(isInitializeRequest) : isInitializeRequest(body);
    if (!initializing) return reply(res, 400, "no session: send initialize first");
    const session = await this.openSession(caller.index, caller.agent, named);
    await send(res, await session.transport.handleRequest(request, { parsedBody: body }));
  }

  /**
   * One 2025 MCP session. Its toolwarden session is the one `named` (the `Toolwarden-Session`
   * header at `initialize`: shared with other connections and replicas, left to expire in the
   * store when this connection ends), else its own, ended with it.
   */
  private async openSession(token: number, agent: Agent, named?: string): Promise<ClientSession> {
    const { warden } = this.options;
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        this.sessions.set(id, session);
        warden.session({ id: named ?? id, agent });
      },
    });
    const upstreams = new Map<string, Promise<Client>>();
    const server = this.buildServer({
      agent,
      session: () => warden.session({ id: named ?? transport.sessionId ?? randomUUID(), agent }),
      client: (upstream) => {
        if (!upstream.stateful) return Promise.resolve(upstream.client);
        let own = upstreams.get(upstream.id);
        if (!own) {
          own = this.connect(upstream.id, upstream.spec);
          own.catch(() => upstreams.delete(upstream.id));
          upstreams.set(upstream.id, own);
        }
        return own;
      },
      pump: new NotificationPump(),
    });
    const session: ClientSession = { transport, server, token, agent, lastSeen: Date.now(), upstreams };
    transport.onclose = () => {
      const id = transport.sessionId;
      if (id && this.sessions.get(id) === session) {
        this.sessions.delete(id);
        if (!named) warden.endSession(id);
      }
      for (const own of upstreams.values()) void own.then((client) => client.close()).catch(() => {});
    };
    await server.connect(transport);
    return session;
  }

  /** One SDK server instance with the gateway's handlers, for a 2025 session or one 2026 request. */
  private buildServer(caller: Caller): Server {
    const server = new Server(
      { name: "toolwarden-gateway", version: toolwardenVersion() },
      {
        capabilities: {
          tools: { listChanged: true },
          resources: { listChanged: true },
          prompts: { listChanged: true },
        },
      },
    );
    const timeout = this.options.requestTimeout ?? 10 * 60_000;
    const forward = async (upstream: Upstream, method: string, params: unknown, ctx: Ctx) => {
      const client = await caller.client(upstream);
      try {
        return await relay(params, ctx.mcpReq, timeout, caller.pump, (options) =>
          client.request(
            { method, params: withRoundTrip(method, relayedParams(params), ctx.mcpReq) } as never,
            { ...roundTripOptions(method), ...options },
          ),
        );
      } catch (error) {
        const ended = this.endReason(client, upstream.id);
        if (ended)
          throw new ProtocolError(
            ProtocolErrorCode.InternalError,
            `toolwarden: ${ended}; the request was not answered`,
          );
        throw error;
      }
    };
    const context = (upstream: Upstream) => ({
      server: upstream.id,
      session: caller.session(),
      agent: caller.agent,
    });

    server.setRequestHandler("tools/list", (async () => {
      const lists = await Promise.all(
        this.offering("tools").map(async (upstream) => {
          await upstream.catalog.refresh();
          return upstream.catalog
            .visible()
            .map((tool) => ({ ...tool, name: namespaced(upstream.id, tool.name) }));
        }),
      );
      return { tools: lists.flat() };
    }) as never);
    server.setRequestHandler("tools/call", (async (request: Req, ctx: Ctx) => {
      const params = request.params as { name: string; arguments?: Record<string, unknown> };
      const [upstream, tool] = this.route(params.name);
      if (!upstream) {
        return refusal({
          verdict: "deny",
          rule: "gateway.unknown_tool",
          reason: `no server offers \`${params.name}\` (tools are named <server>${TOOL_SEPARATOR}<tool>)`,
          findings: [],
          labels: [],
          tool: params.name,
        });
      }
      return this.gate.call(
        upstream.catalog,
        context(upstream),
        tool,
        params.arguments,
        () => forward(upstream, "tools/call", { ...params, name: tool }, ctx) as never,
      );
    }) as never);
    server.setRequestHandler("prompts/list", (async () => {
      const lists = await Promise.all(
        this.offering("prompts").map(async (upstream) =>
          (await upstream.client.listPrompts()).prompts.map((prompt) => ({
            ...prompt,
            name: namespaced(upstream.id, prompt.name),
          })),
        ),
      );
      return { prompts: lists.flat() };
    }) as never);
    server.setRequestHandler("prompts/get", (async (request: Req, ctx: Ctx) => {
      const params = request.params as { name: string; arguments?: Record<string, string> };
      const [upstream, name] = this.route(params.name);
      if (!upstream)
        throw new ProtocolError(
          ProtocolErrorCode.InvalidParams,
          `no server offers prompt \`${params.name}\``,
        );
      return this.gate.request(context(upstream), "prompts/get", promptArgs({ ...params, name }), () =>
        forward(upstream, "prompts/get", { ...params, name }, ctx),
      );
    }) as never);
    server.setRequestHandler("resources/list", (async () => {
      const lists = await Promise.all(
        this.offering("resources").map(async (upstream) => {
          const { resources } = await upstream.client.listResources();
          for (const resource of resources) this.resourceOwners.set(resource.uri, upstream.id);
          return resources;
        }),
      );
      return { resources: lists.flat() };
    }) as never);
    server.setRequestHandler("resources/templates/list", (async () => {
      const lists = await Promise.all(
        this.offering("resources").map(async (upstream) => {
          const { resourceTemplates } = await upstream.client.listResourceTemplates();
          upstream.templates = resourceTemplates.map((t) => new UriTemplate(t.uriTemplate));
          return resourceTemplates;
        }),
      );
      return { resourceTemplates: lists.flat() };
    }) as never);
    server.setRequestHandler("resources/read", (async (request: Req, ctx: Ctx) => {
      const uri = String((request.params as { uri?: unknown }).uri ?? "");
      const upstream = await this.resourceOwner(uri);
      if (!upstream)
        throw new ProtocolError(ProtocolErrorCode.InvalidParams, `no server offers resource \`${uri}\``);
      return this.gate.request(context(upstream), "resources/read", resourceArgs(request.params), () =>
        forward(upstream, "resources/read", request.params, ctx),
      );
    }) as never);
    return server;
  }

  /** Upstreams whose capabilities include `capability`. */
  private offering(capability: "tools" | "prompts" | "resources"): Upstream[] {
    return [...this.upstreams.values()].filter((u) => u.client.getServerCapabilities()?.[capability]);
  }

  /** `<server>__<name>` -> the upstream and the plain name. */
  private route(name: string): [Upstream | undefined, string] {
    const cut = name.indexOf(TOOL_SEPARATOR);
    if (cut <= 0) return [undefined, name];
    return [this.upstreams.get(name.slice(0, cut)), name.slice(cut + TOOL_SEPARATOR.length)];
  }

  /** The server a resource URI belongs to: the one that listed it, else one whose template matches, else the only one with resources. */
  private async resourceOwner(uri: string): Promise<Upstream | undefined> {
    const offering = this.offering("resources");
    const listed = this.resourceOwners.get(uri);
    if (listed) return this.upstreams.get(listed);
    for (const upstream of offering) {
      if (!upstream.templates.length) {
        const { resourceTemplates } = await upstream.client
          .listResourceTemplates()
          .catch(() => ({ resourceTemplates: [] }));
        upstream.templates = resourceTemplates.map((t) => new UriTemplate(t.uriTemplate));
      }
      if (upstream.templates.some((template) => template.match(uri))) return upstream;
    }
    for (const upstream of offering) {
      const { resources } = await upstream.client.listResources().catch(() => ({ resources: [] }));
      for (const resource of resources) this.resourceOwners.set(resource.uri, upstream.id);
    }
    const owner = this.resourceOwners.get(uri);
    if (owner) return this.upstreams.get(owner);
    return offering.length === 1 ? offering[0] : undefined;
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
    await this.modern?.close().catch(() => {});
    if (this.http) {
      const http = this.http;
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    }
    await Promise.allSettled([...this.upstreams.values()].map((upstream) => upstream.client.close()));
    await this.onClose?.();
  }
}

type Req = { method: string; params?: Record<string, unknown> };
type Ctx = { mcpReq: RelayContext };

function namespaced(server: string, name: string): string {
  return `${server}${TOOL_SEPARATOR}${name}`;
}

function reply(res: ServerResponse, status: number, message: string, code = -32000): void {
  res.statusCode = status;
  res.setHeader("Content-Type", "application/json");
  res.end(JSON.stringify({ jsonrpc: "2.0", error: { code, message }, id: null }));
}

/** A web `Request` for the SDK from a Node request, with its JSON body read (bounded) and parsed. */
async function webRequest(req: IncomingMessage): Promise<{ request: Request; body: unknown }> {
  const headers = new Headers();
  for (const [key, value] of Object.entries(req.headers)) {
    if (Array.isArray(value)) for (const v of value) headers.append(key, v);
    else if (value !== undefined) headers.set(key, value);
  }
  const url = new URL(req.url ?? "/", `http://${req.headers.host ?? "gateway"}`);
  if (req.method !== "POST")
    return { request: new Request(url, { method: req.method, headers }), body: undefined };
  const text = await readBody(req);
  const body = JSON.parse(text) as unknown;
  return { request: new Request(url, { method: "POST", headers, body: text }), body };
}

/** Writes the SDK's web `Response` (JSON or an SSE stream) to the Node response. */
async function send(res: ServerResponse, response: Response): Promise<void> {
  res.statusCode = response.status;
  for (const [key, value] of response.headers) res.setHeader(key, value);
  if (!response.body) {
    res.end();
    return;
  }
  const body = Readable.fromWeb(response.body as unknown as WebReadableStream);
  res.once("close", () => body.destroy());
  body.on("error", () => res.destroy());
  body.pipe(res);
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
