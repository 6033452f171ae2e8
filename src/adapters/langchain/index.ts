/**
 * toolwarden/langchain: guard LangChain.js tools (`StructuredTool`, `DynamicStructuredTool`,
 * `tool()`, `DynamicTool`) for any LangChain or LangGraph.js agent. The guarded tool is the same
 * tool (same class, name, schema and callbacks) whose `_call` goes through the policy after the
 * tool's own schema validation. A refused call answers a tool call with a `ToolMessage` of status
 * `error` carrying the reason; called without a tool call, it throws the refusal.
 * `@langchain/core` is an optional peer, loaded only when a refusal needs a `ToolMessage`.
 */
import type { Decision } from "../../core/index.js";
import type { Warden } from "../../gateway/warden.js";
import { type ApprovalAnswer, type GuardOptions, refusalError, ToolGuard } from "../guard.js";

export type { GuardOptions } from "../guard.js";

/** A LangChain tool: a name and `invoke`; every `invoke` ends in the tool's (protected) `_call`. */
export interface LangChainToolLike {
  name: string;
  invoke: (...args: any[]) => unknown;
}

type CallFn = (arg: unknown, runManager?: unknown, config?: ToolRunConfig) => unknown;

/** The run config LangChain hands to `_call` (the parts used here). */
interface ToolRunConfig {
  toolCall?: { id?: string };
  configurable?: { thread_id?: unknown };
}

export interface LangChainGuardOptions extends GuardOptions {
  /**
   * LangGraph's `interrupt` (from `@langchain/langgraph`): an `ask` pauses the graph with
   * `{ type: "toolwarden.approval", tool, args, reason, rule, approval }`; resume it with
   * `new Command({ resume: true | false | { approved, reason? } })`. Without it an `ask` waits as
   * the Warden is set to (`approvals.wait`) or is refused. The approval id can also be decided
   * in the store (dashboard, CLI) before resuming.
   */
  interrupt?: (value: unknown) => unknown;
}

/** Guards one LangChain tool. */
export function guardTool<T extends LangChainToolLike>(
  warden: Warden,
  tool: T,
  options: LangChainGuardOptions = {},
): T {
  return wrapTool(new ToolGuard(warden, options), tool, options.interrupt);
}

/**
 * Guards a list (or record) of LangChain tools, e.g. for `createReactAgent({ llm, tools })` or a
 * `ToolNode`. Sessions: one per LangGraph thread (`configurable.thread_id`, used as the session
 * id), else the session the options or `warden.runInSession` name, else one for the guarded set.
 */
export function guardTools<T extends readonly LangChainToolLike[] | Record<string, LangChainToolLike>>(
  warden: Warden,
  tools: T,
  options: LangChainGuardOptions = {},
): T {
  const guard = new ToolGuard(warden, options);
  if (Array.isArray(tools))
    return tools.map((tool) => wrapTool(guard, tool, options.interrupt)) as unknown as T;
  const out: Record<string, LangChainToolLike> = {};
  for (const [key, tool] of Object.entries(tools as Record<string, LangChainToolLike>))
    out[key] = wrapTool(guard, tool, options.interrupt);
  return out as T;
}

function wrapTool<T extends LangChainToolLike>(
  guard: ToolGuard,
  tool: T,
  interrupt: LangChainGuardOptions["interrupt"],
): T {
  // A child of the tool object: everything (class, schema, callbacks) is inherited; only `_call` differs.
  const guarded = Object.create(tool) as T & { _call: CallFn };
  const original = (tool as unknown as { _call?: CallFn })._call;
  if (typeof original !== "function")
    throw new TypeError(`toolwarden: \`${tool.name}\` is not a LangChain tool (it has no _call)`);
  guarded._call = async (arg: unknown, runManager?: unknown, config?: ToolRunConfig) => {
    const thread = config?.configurable?.thread_id;
    const session = guard.session(typeof thread === "string" && thread ? thread : undefined);
    const call = guard.call(tool.name, arg, session);
    const approver = interrupt ? (decision: Decision) => askGraph(interrupt, decision, call.args) : undefined;
    const outcome = await guard.run(
      call,
      session,
      () => original.call(tool, arg, runManager, config),
      approver,
    );
    if (outcome.allowed) return outcome.output;
    const toolCallId = config?.toolCall?.id;
    if (!toolCallId) throw refusalError(outcome.decision, outcome.message);
    const { ToolMessage } = await import("@langchain/core/messages");
    return new ToolMessage({
      status: "error",
      content: outcome.message,
      tool_call_id: toolCallId,
      name: tool.name,
    });
  };
  return guarded;
}

/** Pauses the graph for a human (first pass: `interrupt` throws); on resume, reads the answer. */
function askGraph(interrupt: (value: unknown) => unknown, decision: Decision, args: unknown): ApprovalAnswer {
  const answer = interrupt({
    type: "toolwarden.approval",
    tool: decision.tool,
    args,
    reason: decision.reason,
    rule: decision.rule,
    approval: decision.approval,
  });
  if (answer === true || answer === false) return { approved: answer, by: "langgraph:interrupt" };
  if (answer && typeof answer === "object" && "approved" in answer) {
    const { approved, reason } = answer as { approved: unknown; reason?: unknown };
    return {
      approved: approved === true,
      by: "langgraph:interrupt",
      reason: typeof reason === "string" ? reason : undefined,
    };
  }
  return { approved: false, by: "langgraph:interrupt", reason: "the resume value was not an approval" };
}
