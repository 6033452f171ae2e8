import { randomUUID } from "node:crypto";
import type { Client } from "@modelcontextprotocol/client";
import {
  CLIENT_CAPABILITIES_META_KEY,
  CLIENT_INFO_META_KEY,
  isInitializeRequest,
  isJSONRPCRequest,
  ProtocolError,
  ProtocolErrorCode,
  Server,
} from "@modelcontextprotocol/server";
import type {
  ClientCapabilities,
  Implementation,
  JSONRPCMessage,
  ServerCapabilities,
  Transport,
} from "@modelcontextprotocol/server";
import { serveStdio } from "@modelcontextprotocol/server/stdio";
import type { Agent } from "../../core/index.js";
import type { Session, Warden } from "../../gateway/index.js";
import { ToolCatalog } from "./catalog.js";
import { ToolGate } from "./gate.js";
import type { GateOptions } from "./gate.js";
import { HeldTransport } from "./held-transport.js";
import type { PinLedger } from "./pins.js";
import { NotificationPump, notificationKey } from "./pump.js";
import type { PumpOptions, PumpStats } from "./pump.js";
import type { RelayContext } from "./relay.js";
import { relay, relayedParams, roundTripOptions, withRoundTrip } from "./relay.js";
import { connectUpstream, describeUpstream, upstreamTransport } from "./upstream.js";
import type { UpstreamSpec } from "./upstream.js";
import { toolwardenVersion } from "../../core/version.js";

export interface ProxyOptions {
  warden: Warden;
  /** The server's id in the policy (`servers.<id>`, `when: { server }`) and in the pin ledger. */
  server: string;
  upstream: UpstreamSpec;
  /** The pin ledger; without one, tools are not pinned. */
  ledger?: PinLedger;
  /** The agent behind this client, for `agent.<attr>` conditions and per-agent limits. */
  agent?: Agent;
  /**
   * The session the client's calls belong to. Default: a new one per proxy process, ended when
   * it exits. Given (with a shared store), a restarted proxy continues the same session, which
   * outlives it until its idle expiry.
   */
  session?: string;
  gate?: GateOptions;
  /** Longest wait for one upstream request (ms), reset by progress. Default 10 minutes. */
  requestTimeout?: number;
  /** Where the upstream server's stderr goes. Default inherit. */
  stderr?: "inherit" | "pipe" | "ignore";
  /** Longest line the upstream may send over stdio (bytes). Default 10 MiB. */
  maxLine?: number;
  /** Bounds on notifications waiting for the client (a flooding server). */
  notifications?: PumpOptions;
  /** Where operational lines go (the upstream's end, dropped notifications). Default none. */
  log?: (line: string) => void;
}

/** Methods forwarded unchanged, by the server capability that offers them. */
const FORWARDED: ReadonlyArray<[keyof ServerCapabilities, ReadonlyArray<string>]> = [
  [
    "resources",
    ["resources/list", "resources/templates/list", "resources/subscribe", "resources/unsubscribe"],
  ],
  ["prompts", ["prompts/list"]],
  ["completions", ["completion/complete"]],
  ["logging", ["logging/setLevel"]],
];

/** Upstream notifications that also reach the proxy itself (registered so a 2026 subscription delivers them). */
const LIST_CHANGED = [
  "notifications/tools/list_changed",
  "notifications/prompts/list_changed",
  "notifications/resources/list_changed",
  "notifications/resources/updated",
] as const;

/**
 * The MCP proxy: an MCP server for one client connection that launches (or dials) the real server
 * as a client and forwards everything — tools, resources, prompts, completions, logging,
 * notifications (including `tools/list_changed`), progress and cancellation, and the server's own
 * requests (sampling, elicitation, roots) — while every `tools/call`, `resources/read` and
 * `prompts/get` goes through the policy (and tool calls through the pins).
 *
 * Both protocol generations on both sides (v2 SDK): the client may open with `initialize` (2025)
 * or `server/discover` (2026-07-28); upstream, the proxy probes with `server/discover` and falls
 * back to `initialize`, so a server that rejects the old protocol is proxied too. It mirrors the
 * client's capabilities upstream and the server's downstream. Notifications the client cannot
 * take in time are coalesced or dropped (counted), never buffered without bound. When the
 * upstream ends (exit, a line over the limit), every pending request is answered with an error
 * that says so and `failure` holds the reason.
 */
export class McpProxy {
  readonly session: Session;
  /** Resolves when either side has closed and the other was closed too. */
  readonly closed: Promise<void>;
  /** Why the upstream ended, when it ended on its own (exit, crash, a line over the limit). */
  failure: string | undefined;
  private readonly pump: NotificationPump;
  private current: Server | undefined;
  private era: "legacy" | "modern" = "legacy";
  private pending = 0;
  private stopping = false;
  private settled: (() => void) | undefined;
  private finish: () => void = () => {};
  private handle: { close(): Promise<void> } | undefined;
  private readonly catalog: ToolCatalog;
  private readonly gate: ToolGate;

  private constructor(
    readonly client: Client,
    private readonly upstream: Transport,
    private readonly options: ProxyOptions,
  ) {
    const { warden } = options;
    this.session = warden.session({ id: options.session ?? randomUUID(), agent: options.agent });
    this.catalog = new ToolCatalog(client, options.server, warden, options.ledger);
    this.gate = new ToolGate(warden, options.gate);
    this.pump = new NotificationPump(options.notifications);
    this.closed = new Promise<void>((resolve) => {
      let done = false;
      this.finish = () => {
        if (done) return;
        done = true;
        this.stopping = true;
        void this.shutdown().then(resolve);
      };
    });
  }

  /** The SDK server instance serving the client now (2025 or 2026 era). */
  get server(): Server | undefined {
    return this.current;
  }

  /** Notifications forwarded, coalesced and dropped so far. */
  get notificationStats(): PumpStats {
    return this.pump.stats;
  }

  /** Serves one client on `downstream` (e.g. a stdio transport); resolves once the upstream is connected. */
  static async serve(downstream: Transport, options: ProxyOptions): Promise<McpProxy> {
    const held = new HeldTransport(downstream);
    const first = await held.first();
    const { capabilities, info } = clientIdentity(first);
    const upstream = upstreamTransport(options.upstream, {
      stderr: options.stderr,
      name: options.server,
      maxLine: options.maxLine,
      overLimit: (limit) =>
        `server \`${options.server}\` sent a line of more than ${limit} bytes (the limit is --max-line)`,
    });
    let client: Client;
    try {
      client = await connectUpstream(options.upstream, { info, capabilities, transport: upstream });
    } catch (error) {
      const reason = (upstream as { reason?: string }).reason ?? (error as Error).message;
      const message = `toolwarden could not start server \`${options.server}\` (${describeUpstream(options.upstream)}): ${reason}`;
      if (isJSONRPCRequest(first)) {
        await held
          .send({ jsonrpc: "2.0", id: first.id, error: { code: ProtocolErrorCode.InternalError, message } })
          .catch(() => {});
      }
      await held.close().catch(() => {});
      throw new Error(message);
    }
    const proxy = new McpProxy(client, upstream, options);
    proxy.wireUpstream();
    proxy.passLogsThrough(held);
    proxy.handle = serveStdio(
      ({ era }) => {
        proxy.era = era;
        proxy.current = proxy.buildServer();
        return proxy.current;
      },
      { transport: held, legacy: "serve", onerror: () => {} },
    );
    void held.ended.then(() => proxy.finish());
    client.onclose = () => {
      if (!proxy.stopping) proxy.failure ??= proxy.upstreamEnd();
      proxy.finish();
    };
    if (client.getProtocolEra() === "modern") await proxy.listenUpstream();
    return proxy;
  }

  /** Why the upstream connection ended, in words. */
  private upstreamEnd(): string {
    return (
      (this.upstream as { reason?: string }).reason ??
      `server \`${this.options.server}\` closed the connection`
    );
  }

  /** One SDK server for the client connection; `serveStdio` asks for one per era it serves. */
  private buildServer(): Server {
    const { client, options } = this;
    const { warden } = options;
    const caps = client.getServerCapabilities() ?? {};
    const server = new Server(
      { ...(client.getServerVersion() ?? { name: options.server, version: "0.0.0" }) },
      { capabilities: serverCapabilities(caps), instructions: client.getInstructions() },
    );
    const timeout = options.requestTimeout ?? 10 * 60_000;
    const forward = (method: string, params: unknown, ctx: Ctx) =>
      relay(params, ctx.mcpReq, timeout, this.pump, (requestOptions) =>
        client.request(
          { method, params: withRoundTrip(method, relayedParams(params), ctx.mcpReq) } as never,
          { ...roundTripOptions(method), ...requestOptions },
        ),
      );
    const context = { server: options.server, session: this.session, agent: options.agent };

    for (const [capability, methods] of FORWARDED) {
      if (!caps[capability]) continue;
      for (const method of methods)
        server.setRequestHandler(
          method as never,
          ((request: Req, ctx: Ctx) => this.track(forward(method, request.params, ctx))) as never,
        );
    }
    if (caps.prompts) {
      server.setRequestHandler("prompts/get", ((request: Req, ctx: Ctx) =>
        this.track(
          this.gate.request(context, "prompts/get", promptArgs(request.params), () =>
            forward("prompts/get", request.params, ctx),
          ),
        )) as never);
    }
    if (caps.resources) {
      server.setRequestHandler("resources/read", ((request: Req, ctx: Ctx) =>
        this.track(
          this.gate.request(context, "resources/read", resourceArgs(request.params), () =>
            forward("resources/read", request.params, ctx),
          ),
        )) as never);
    }
    if (caps.tools) {
      server.setRequestHandler("tools/list", (async () => {
        await this.catalog.refresh();
        return { tools: this.catalog.visible() };
      }) as never);
      server.setRequestHandler("tools/call", ((request: Req, ctx: Ctx) => {
        const params = request.params as { name: string; arguments?: Record<string, unknown> };
        return this.track(
          this.gate.call(
            this.catalog,
            context,
            params.name,
            params.arguments,
            () => forward("tools/call", request.params, ctx) as never,
          ),
        );
      }) as never);
    }
    // The client's notifications (roots changed, ...) go upstream; cancellation travels with its request.
    server.fallbackNotificationHandler = async (notification) => {
      if (
        notification.method === "notifications/cancelled" ||
        notification.method === "notifications/initialized"
      )
        return;
      await client.notification(notification as never).catch(() => {});
    };
    void warden;
    return server;
  }

  /** Upstream notifications and requests, to whichever server instance serves the client. */
  private wireUpstream(): void {
    const { client } = this;
    const toClient = async (notification: { method: string; params?: Record<string, unknown> }) => {
      if (notification.method === "notifications/tools/list_changed")
        await this.catalog.refresh().catch(() => {});
      this.pump.push(
        () => this.current?.notification(notification as never) ?? Promise.resolve(),
        notificationKey(notification),
      );
    };
    for (const method of LIST_CHANGED) client.setNotificationHandler(method, toClient as never);
    client.fallbackNotificationHandler = toClient as never;
    // The server's own requests (sampling, elicitation, roots) go to a 2025 client; a 2026 client has no such channel.
    client.fallbackRequestHandler = ((request: Req, ctx: Ctx) => {
      const server = this.current;
      if (!server || this.era === "modern")
        throw new ProtocolError(
          ProtocolErrorCode.MethodNotFound,
          `the client (protocol 2026-07-28) takes no server requests; \`${request.method}\` cannot be relayed`,
        );
      return relay(
        request.params,
        ctx.mcpReq,
        this.options.requestTimeout ?? 10 * 60_000,
        this.pump,
        (options) =>
          server.request({ method: request.method, params: relayedParams(request.params) } as never, options),
      );
    }) as never;
  }

  /**
   * Log messages (`notifications/message`, what a chatty or flooding server sends most) need nothing
   * from the proxy: once the client is served they go from the upstream's transport to the client's
   * as they are, through the pump, without being parsed and rebuilt by both SDK layers.
   */
  private passLogsThrough(downstream: Transport): void {
    const upstream = this.upstream;
    const protocol = upstream.onmessage;
    if (!protocol) return;
    upstream.onmessage = ((message: JSONRPCMessage, extra?: unknown) => {
      if (
        this.current &&
        "method" in message &&
        !("id" in message) &&
        message.method === "notifications/message"
      ) {
        this.pump.push(() => downstream.send(message));
        return;
      }
      protocol.call(upstream, message, extra as never);
    }) as typeof upstream.onmessage;
  }

  /** A 2026 upstream announces changes only on a subscription: open one for what it offers. */
  private async listenUpstream(): Promise<void> {
    const caps = this.client.getServerCapabilities() ?? {};
    const filter = {
      ...(caps.tools?.listChanged ? { toolsListChanged: true } : {}),
      ...(caps.prompts?.listChanged ? { promptsListChanged: true } : {}),
      ...(caps.resources?.listChanged ? { resourcesListChanged: true } : {}),
    };
    if (!Object.keys(filter).length) return;
    await this.client
      .listen(filter)
      .catch((error) => this.log(`cannot subscribe to changes: ${(error as Error).message}`));
  }

  /** Counts a request in flight, and turns an error caused by the upstream's end into one that says so. */
  private async track<T>(work: Promise<T>): Promise<T> {
    this.pending++;
    try {
      return await work;
    } catch (error) {
      if (this.failure ?? !this.client.transport) {
        const reason = this.failure ?? this.upstreamEnd();
        throw new ProtocolError(
          ProtocolErrorCode.InternalError,
          `toolwarden: ${reason}; the request was not answered`,
        );
      }
      throw error;
    } finally {
      this.pending--;
      if (this.pending === 0) this.settled?.();
    }
  }

  private async shutdown(): Promise<void> {
    if (this.failure) {
      const pending = this.pending === 1 ? "1 pending request" : `${this.pending} pending requests`;
      this.log(`${this.failure}; answering ${pending} with an error and stopping`);
      // Let the pending requests be answered (their upstream requests fail with the connection).
      if (this.pending > 0)
        await Promise.race([
          new Promise<void>((resolve) => {
            this.settled = resolve;
          }),
          new Promise((resolve) => setTimeout(resolve, 2000).unref()),
        ]);
      // The SDK writes each answer a few ticks after its handler settles.
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const { dropped, coalesced } = this.pump.stats;
    if (dropped || coalesced)
      this.log(
        `the client did not keep up with server \`${this.options.server}\`: ${dropped} notifications dropped, ${coalesced} coalesced`,
      );
    if (this.options.session === undefined) this.options.warden.endSession(this.session.id);
    await Promise.allSettled([this.client.close(), this.handle?.close()]);
  }

  private log(line: string): void {
    this.options.log?.(`toolwarden mcp proxy: ${line}`);
  }

  async close(): Promise<void> {
    this.finish();
    await this.closed;
  }
}

type Req = { method: string; params?: Record<string, unknown> };
type Ctx = { mcpReq: RelayContext };

/** The client's capabilities and name, from its `initialize` or from the envelope of a 2026 request. */
function clientIdentity(first: JSONRPCMessage): { capabilities: ClientCapabilities; info: Implementation } {
  let capabilities: ClientCapabilities = {};
  let info: Implementation = { name: "toolwarden-proxy", version: toolwardenVersion() };
  if (isInitializeRequest(first)) {
    capabilities = first.params.capabilities;
    info = first.params.clientInfo;
  } else if ("params" in first) {
    const meta = (first.params as { _meta?: Record<string, unknown> } | undefined)?._meta;
    if (meta?.[CLIENT_CAPABILITIES_META_KEY])
      capabilities = meta[CLIENT_CAPABILITIES_META_KEY] as ClientCapabilities;
    if (meta?.[CLIENT_INFO_META_KEY]) info = meta[CLIENT_INFO_META_KEY] as Implementation;
  }
  const { tasks: _tasks, ...rest } = capabilities as ClientCapabilities & { tasks?: unknown };
  // In 2025 an empty elicitation capability meant form mode; a 2026 server wants it said.
  const elicitation = rest.elicitation as Record<string, unknown> | undefined;
  if (elicitation && !Object.keys(elicitation).length) rest.elicitation = { form: {} } as never;
  return { capabilities: rest, info };
}

/** The server's capabilities minus experimental tasks, which the proxy does not relay. */
function serverCapabilities(upstream: ServerCapabilities): ServerCapabilities {
  const { tasks: _tasks, ...rest } = upstream as ServerCapabilities & { tasks?: unknown };
  return rest;
}

/** A `resources/read` as the policy sees it: the URI, and for a `file:` URI its path. */
export function resourceArgs(params: unknown): Record<string, unknown> {
  const uri = String((params as { uri?: unknown } | undefined)?.uri ?? "");
  const args: Record<string, unknown> = { uri };
  if (uri.startsWith("file:")) {
    try {
      args.path = decodeURIComponent(new URL(uri).pathname);
    } catch {}
  }
  return args;
}

/** A `prompts/get` as the policy sees it: the prompt's name and its arguments. */
export function promptArgs(params: unknown): Record<string, unknown> {
  const { name, arguments: args } = (params ?? {}) as { name?: unknown; arguments?: unknown };
  return { name, arguments: args ?? {} };
}
