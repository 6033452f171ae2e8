/**
 * toolwarden/openai-agents: guard the tools of an OpenAI Agents SDK (`@openai/agents`) agent —
 * its function tools, the tools of its MCP servers, and the agents it hands off to. Each tool's
 * `invoke` is decided first (a refusal becomes the tool's output, which the model reads), and an
 * `ask` verdict becomes the tool's `needsApproval`, answered through the SDK's own run
 * interruptions (`result.interruptions`, `state.approve(item)`).
 * Structural types only: `@openai/agents` is an optional peer and is never loaded here.
 */
import type { Warden } from "../../gateway/warden.js";
import { type ApprovalAnswer, type GuardOptions, parseArgs, ToolGuard } from "../guard.js";

export type { GuardOptions } from "../guard.js";

/** The SDK's per-run context (the parts used here): one object for one run, approvals included. */
export interface RunContextLike {
  isToolApproved?: (approval: { toolName: string; callId: string }) => boolean | undefined;
}

/** A function tool as `tool({...})` makes it. */
export interface FunctionToolLike {
  type: "function";
  name: string;
  invoke: (runContext: any, input: string, details?: any) => Promise<unknown>;
  needsApproval: (runContext: any, input: any, callId?: string) => Promise<boolean>;
}

/** An MCP server as the agent holds it (the parts used here). */
interface McpServerLike {
  name: string;
}

/** An `Agent` (the parts used here). */
export interface AgentLike {
  name: string;
  tools: readonly unknown[];
  handoffs: readonly unknown[];
  mcpServers: readonly McpServerLike[];
  clone(config: Record<string, unknown>): AgentLike;
  getMcpTools(runContext: unknown, tracingParent?: unknown): Promise<unknown[]>;
}

/**
 * Guards the function tools of a list (hosted tools, computer and shell tools pass as they are).
 * One run (one `RunContext`) is one session unless the options or `warden.runInSession` name one.
 */
export function guardTools<T extends readonly unknown[]>(
  warden: Warden,
  tools: T,
  options: GuardOptions = {},
): T {
  const guard = new ToolGuard(warden, options);
  return tools.map((tool) => (isFunctionTool(tool) ? guardFunctionTool(guard, tool) : tool)) as unknown as T;
}

/**
 * A copy of the agent whose function tools, MCP tools (with `server` set to the MCP server's name,
 * so `servers.<name>` in the policy applies) and handoff agents are guarded. Sessions as in
 * `guardTools`; the approvals of an `ask` are the SDK's own interruptions.
 *
 * ```ts
 * const result = await run(guardAgent(warden, agent), "Summarise https://example.com");
 * ```
 */
export function guardAgent<A extends AgentLike>(warden: Warden, agent: A, options: GuardOptions = {}): A {
  return guardAgentWith(new ToolGuard(warden, options), agent, new Map()) as A;
}

function guardAgentWith(guard: ToolGuard, agent: AgentLike, done: Map<AgentLike, AgentLike>): AgentLike {
  const known = done.get(agent);
  if (known) return known;
  const copy = agent.clone({
    tools: agent.tools.map((tool) => (isFunctionTool(tool) ? guardFunctionTool(guard, tool) : tool)),
  });
  done.set(agent, copy);
  // Handoffs may point back at this agent, so they are guarded once the copy is known.
  (copy as unknown as { handoffs: unknown[] }).handoffs = agent.handoffs.map((target) =>
    isAgent(target) ? guardAgentWith(guard, target, done) : target,
  );
  if (agent.mcpServers.length) {
    const listTools = Object.getPrototypeOf(agent).getMcpTools as AgentLike["getMcpTools"];
    copy.getMcpTools = async function (this: AgentLike, runContext: unknown, tracingParent?: unknown) {
      const tools: unknown[] = [];
      // One server at a time, so each tool is known to come from its server.
      for (const server of this.mcpServers) {
        const view = Object.create(this, { mcpServers: { value: [server] } }) as AgentLike;
        for (const tool of await listTools.call(view, runContext, tracingParent)) {
          tools.push(isFunctionTool(tool) ? guardFunctionTool(guard, tool, server.name) : tool);
        }
      }
      return tools;
    };
  }
  return copy;
}

function guardFunctionTool(guard: ToolGuard, tool: FunctionToolLike, server?: string): FunctionToolLike {
  const { invoke, needsApproval } = tool;
  return {
    ...tool,
    invoke: async (
      runContext: RunContextLike | undefined,
      input: string,
      details?: { toolCall?: { callId?: string } },
    ) => {
      const session = guard.session(runContext ?? undefined);
      const call = guard.call(tool.name, parseArgs(input) ?? { input }, session, server);
      const callId = details?.toolCall?.callId;
      const approver = (): ApprovalAnswer | undefined =>
        callId && runContext?.isToolApproved?.({ toolName: tool.name, callId }) === true
          ? { approved: true, by: `openai-agents:${callId}` }
          : undefined;
      const outcome = await guard.run(
        call,
        session,
        () => invoke.call(tool, runContext, input, details),
        approver,
      );
      return outcome.allowed ? outcome.output : outcome.message;
    },
    needsApproval: async (runContext: RunContextLike | undefined, input: unknown, callId?: string) => {
      if (await needsApproval.call(tool, runContext, input, callId)) return true;
      const session = guard.session(runContext ?? undefined);
      const args = typeof input === "string" ? (parseArgs(input) ?? { input }) : input;
      const decision = guard.evaluate(guard.call(tool.name, args, session, server));
      return decision.verdict === "ask" && decision.enforced !== false;
    },
  };
}

function isFunctionTool(tool: unknown): tool is FunctionToolLike {
  const t = tool as FunctionToolLike | null;
  return (
    !!t && t.type === "function" && typeof t.invoke === "function" && typeof t.needsApproval === "function"
  );
}

function isAgent(value: unknown): value is AgentLike {
  const a = value as AgentLike | null;
  return (
    !!a && typeof a.clone === "function" && typeof a.getMcpTools === "function" && Array.isArray(a.tools)
  );
}
