import { randomUUID } from "node:crypto";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import {
  CallToolRequestSchema,
  CallToolResultSchema,
  CompleteRequestSchema,
  ErrorCode,
  GetPromptRequestSchema,
  isInitializeRequest,
  isJSONRPCRequest,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  ReadResourceRequestSchema,
  ResultSchema,
  SetLevelRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";
import type {
  ClientCapabilities,
  Implementation,
  ServerCapabilities,
} from "@modelcontextprotocol/sdk/types.js";
import type { Agent } from "../../core/index.js";
import type { Session, Warden } from "../../gateway/index.js";
import { ToolCatalog } from "./catalog.js";
import { ToolGate } from "./gate.js";
import type { GateOptions } from "./gate.js";
import { HeldTransport } from "./held-transport.js";
import type { PinLedger } from "./pins.js";
import { relay } from "./relay.js";
import { connectUpstream, describeUpstream } from "./upstream.js";
import type { UpstreamSpec } from "./upstream.js";

export interface ProxyOptions {
  warden: Warden;
  /** The server's id in the policy (`servers.<id>`, `when: { server }`) and in the pin ledger. */
  server: string;
  upstream: UpstreamSpec;
  /** The pin ledger; without one, tools are not pinned. */
  ledger?: PinLedger;
  /** The agent behind this client, for `agent.<attr>` conditions and per-agent limits. */
  agent?: Agent;
  gate?: GateOptions;
  /** Longest wait for one upstream request (ms), reset by progress. Default 10 minutes. */
  requestTimeout?: number;
  /** Where the upstream server's stderr goes. Default inherit. */
  stderr?: "inherit" | "pipe" | "ignore";
}

/** Request handlers a server gets per capability; each forwards the request upstream unchanged. */
const FORWARDED: ReadonlyArray<
  [keyof ServerCapabilities, ReadonlyArray<Parameters<Server["setRequestHandler"]>[0]>]
> = [
  [
    "resources",
    [
      ListResourcesRequestSchema,
      ListResourceTemplatesRequestSchema,
      SubscribeRequestSchema,
      UnsubscribeRequestSchema,
    ],
  ],
  ["prompts", [ListPromptsRequestSchema]],
  ["completions", [CompleteRequestSchema]],
  ["logging", [SetLevelRequestSchema]],
];

/**
 * The MCP proxy: an MCP server for one client connection that launches (or dials) the real server
 * as a client and forwards everything — tools, resources, prompts, completions, logging,
 * notifications (including `tools/list_changed`), progress and cancellation, and the server's own
 * requests (sampling, elicitation, roots) — while every `tools/call` goes through the policy and
 * the tool pins. It mirrors the client's capabilities upstream and the server's downstream, so
 * neither side can tell it is there, except for what the policy refuses.
 */
export class McpProxy {
  readonly session: Session;
  /** Resolves when either side has closed and the other was closed too. */
  readonly closed: Promise<void>;
  private constructor(
    readonly server: Server,
    readonly client: Client,
    readonly catalog: ToolCatalog,
    session: Session,
    closed: Promise<void>,
  ) {
    this.session = session;
    this.closed = closed;
  }

  /** Serves one client on `downstream` (e.g. a `StdioServerTransport`); resolves once the upstream is connected. */
  static async serve(downstream: Transport, options: ProxyOptions): Promise<McpProxy> {
    const held = new HeldTransport(downstream);
    const first = await held.first();
    let capabilities: ClientCapabilities = {};
    let info: Implementation = { name: "toolwarden-proxy", version: "0.1.0" };
    if (isInitializeRequest(first)) {
      capabilities = withoutTasks(first.params.capabilities);
      info = first.params.clientInfo;
    }
    let client: Client;
    try {
      client = await connectUpstream(options.upstream, { info, capabilities, stderr: options.stderr });
    } catch (error) {
      const message = `toolwarden could not start server \`${options.server}\` (${describeUpstream(options.upstream)}): ${(error as Error).message}`;
      if (isJSONRPCRequest(first)) {
        await held
          .send({ jsonrpc: "2.0", id: first.id, error: { code: ErrorCode.InternalError, message } })
          .catch(() => {});
      }
      await held.close().catch(() => {});
      throw new Error(message);
    }
    const upstreamInfo = client.getServerVersion() ?? { name: options.server, version: "0.0.0" };
    const server = new Server(
      { ...upstreamInfo },
      {
        capabilities: serverCapabilities(client.getServerCapabilities() ?? {}),
        instructions: client.getInstructions(),
      },
    );
    const { warden } = options;
    const session = warden.session({ id: randomUUID(), agent: options.agent });
    const catalog = new ToolCatalog(client, options.server, warden, options.ledger);
    const gate = new ToolGate(warden, options.gate);
    const timeout = options.requestTimeout ?? 10 * 60_000;
    const caps = client.getServerCapabilities() ?? {};

    for (const [capability, schemas] of FORWARDED) {
      if (!caps[capability]) continue;
      for (const schema of schemas) {
        server.setRequestHandler(schema, (request, extra) =>
          relay(request.params, extra, timeout, (options) =>
            client.request(
              { method: request.method, params: request.params } as never,
              ResultSchema,
              options,
            ),
          ),
        );
      }
    }
    if (caps.prompts) {
      server.setRequestHandler(GetPromptRequestSchema, async (request, extra) => {
        const result = await relay(request.params, extra, timeout, (options) =>
          client.request(request as never, ResultSchema, options),
        );
        warden.recordOutput(
          { tool: "prompts/get", server: options.server, session: session.id },
          JSON.stringify(result.messages ?? []),
          session,
        );
        return result;
      });
    }
    if (caps.resources) {
      server.setRequestHandler(ReadResourceRequestSchema, async (request, extra) => {
        const result = await relay(request.params, extra, timeout, (options) =>
          client.request(request as never, ResultSchema, options),
        );
        const contents = (result.contents ?? []) as Array<{ text?: unknown }>;
        const text = contents.map((c) => (typeof c.text === "string" ? c.text : "")).join("\n");
        warden.recordOutput(
          { tool: "resources/read", server: options.server, session: session.id },
          text,
          session,
        );
        return result;
      });
    }
    if (caps.tools) {
      server.setRequestHandler(ListToolsRequestSchema, async () => {
        await catalog.refresh();
        return { tools: catalog.visible() as never };
      });
      server.setRequestHandler(CallToolRequestSchema, (request, extra) =>
        gate.call(
          catalog,
          { server: options.server, session, agent: options.agent },
          request.params.name,
          request.params.arguments,
          () =>
            relay(request.params, extra, timeout, (options) =>
              client.request({ method: "tools/call", params: request.params }, CallToolResultSchema, options),
            ),
        ),
      );
    }

    // Notifications both ways; a changed tool list is re-checked against the pins before the client hears of it.
    client.fallbackNotificationHandler = async (notification) => {
      if (notification.method === "notifications/tools/list_changed") await catalog.refresh().catch(() => {});
      await server.notification(notification as never).catch(() => {});
    };
    server.fallbackNotificationHandler = async (notification) => {
      await client.notification(notification as never).catch(() => {});
    };
    // The server's own requests (sampling, elicitation, roots) go to the client.
    client.fallbackRequestHandler = (request, extra) =>
      relay(request.params, extra, timeout, (options) =>
        server.request({ method: request.method, params: request.params } as never, ResultSchema, options),
      ) as never;

    const closed = new Promise<void>((resolve) => {
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        warden.endSession(session.id);
        void Promise.allSettled([client.close(), server.close()]).then(() => resolve());
      };
      server.onclose = finish;
      client.onclose = finish;
    });
    await server.connect(held);
    return new McpProxy(server, client, catalog, session, closed);
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.client.close(), this.server.close()]);
    await this.closed;
  }
}

/** The client's capabilities minus experimental tasks, which the proxy does not relay. */
function withoutTasks(capabilities: ClientCapabilities): ClientCapabilities {
  const { tasks: _tasks, ...rest } = capabilities as ClientCapabilities & { tasks?: unknown };
  return rest;
}

function serverCapabilities(upstream: ServerCapabilities): ServerCapabilities {
  const { tasks: _tasks, ...rest } = upstream as ServerCapabilities & { tasks?: unknown };
  return rest;
}
