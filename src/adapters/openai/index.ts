/**
 * toolwarden/openai: run the OpenAI SDK's tool calls through the policy. `guardToolCalls` answers
 * Chat Completions `tool_calls` and Responses API function calls with the right tool messages;
 * `guardRunnableTools` guards the tools of `client.chat.completions.runTools`. A refused call
 * becomes a tool message that tells the model it was refused and why, so the loop goes on.
 * Structural types only: the `openai` package is an optional peer and is never loaded here.
 */
import type { Call, Decision } from "../../core/index.js";
import type { Session } from "../../gateway/session.js";
import type { Warden } from "../../gateway/warden.js";
import { type GuardOptions, outputText, parseArgs, ToolGuard } from "../guard.js";

export type { GuardOptions } from "../guard.js";

/** A tool call of a Chat Completions assistant message (function or custom tool). */
export type ChatToolCall =
  | { id: string; type: "function"; function: { name: string; arguments: string } }
  | { id: string; type: "custom"; custom: { name: string; input: string } };

/** The tool message answering one Chat Completions tool call. */
export interface ChatToolMessage {
  role: "tool";
  tool_call_id: string;
  content: string;
}

/** An item of a Responses API `output`; only function and custom tool calls are acted on. */
export type ResponseOutputItem =
  | { type: "function_call"; call_id: string; name: string; arguments: string }
  | { type: "custom_tool_call"; call_id: string; name: string; input: string }
  | { type: string };

/** The input item answering one Responses API tool call. */
export type ResponseToolOutput =
  | { type: "function_call_output"; call_id: string; output: string }
  | { type: "custom_tool_call_output"; call_id: string; output: string };

/** What a tool function receives besides its arguments. */
export interface ToolCallContext {
  /** The model's id for this call. */
  callId: string;
  session: Session;
  call: Call;
}

/** A host tool: parsed JSON arguments (or `{ input }` for a custom tool) in, anything JSON-able out. */
export type ToolFunction = (args: any, context: ToolCallContext) => unknown;

/** One outcome per tool call, in the order the model made them. */
export interface ToolCallResult {
  callId: string;
  tool: string;
  decision: Decision | undefined;
  /** The text the model reads: the output, the refusal, or why the call could not be read. */
  content: string;
}

/** Executes the model's tool calls of one agent run through the policy. */
export interface ToolCallGuard {
  /** The run's session (see `GuardOptions.session`). */
  readonly session: Session;
  /** Chat Completions: answers `message.tool_calls` with one `role: "tool"` message each, in order. */
  chat(toolCalls: readonly ChatToolCall[] | null | undefined): Promise<ChatToolMessage[]>;
  /** Responses API: answers the tool calls in `response.output` with one output item each, in order. */
  responses(output: readonly ResponseOutputItem[]): Promise<ResponseToolOutput[]>;
  /** The decisions and texts of the calls answered so far. */
  readonly results: readonly ToolCallResult[];
}

/**
 * Guards a record of tool functions for one agent run: every call the model makes is decided,
 * run only if allowed, and its output labelled for later flow checks. Calls run one at a time in
 * the model's order, so an earlier output is known when a later call is checked.
 *
 * ```ts
 * const tools = guardToolCalls(warden, { web_fetch, send_email });
 * messages.push(message, ...(await tools.chat(message.tool_calls)));
 * ```
 */
export function guardToolCalls(
  warden: Warden,
  tools: Record<string, ToolFunction>,
  options: GuardOptions = {},
): ToolCallGuard {
  const guard = new ToolGuard(warden, options);
  const results: ToolCallResult[] = [];

  async function answer(
    callId: string,
    tool: string,
    args: Record<string, unknown> | undefined,
  ): Promise<string> {
    const session = guard.session();
    if (!args) {
      const content = `the arguments of \`${tool}\` are not a JSON object; the call was not run.`;
      results.push({ callId, tool, decision: undefined, content });
      return content;
    }
    const call = guard.call(tool, args, session);
    const outcome = await guard.runNamed(tools, call, session, (fn) => fn(args, { callId, session, call }));
    const content = outcome.allowed ? outputText(outcome.output) : outcome.message;
    results.push({ callId, tool, decision: outcome.decision, content });
    return content;
  }

  return {
    get session() {
      return guard.session();
    },
    results,
    async chat(toolCalls) {
      const messages: ChatToolMessage[] = [];
      for (const toolCall of toolCalls ?? []) {
        const [name, args] =
          toolCall.type === "custom"
            ? [toolCall.custom.name, { input: toolCall.custom.input }]
            : [toolCall.function.name, parseArgs(toolCall.function.arguments)];
        messages.push({
          role: "tool",
          tool_call_id: toolCall.id,
          content: await answer(toolCall.id, name, args),
        });
      }
      return messages;
    },
    async responses(output) {
      const items: ResponseToolOutput[] = [];
      for (const item of output) {
        if (isFunctionCall(item)) {
          const content = await answer(item.call_id, item.name, parseArgs(item.arguments));
          items.push({ type: "function_call_output", call_id: item.call_id, output: content });
        } else if (isCustomCall(item)) {
          const content = await answer(item.call_id, item.name, { input: item.input });
          items.push({ type: "custom_tool_call_output", call_id: item.call_id, output: content });
        }
      }
      return items;
    },
  };
}

function isFunctionCall(
  item: ResponseOutputItem,
): item is Extract<ResponseOutputItem, { type: "function_call" }> {
  return item.type === "function_call" && "call_id" in item;
}

function isCustomCall(
  item: ResponseOutputItem,
): item is Extract<ResponseOutputItem, { type: "custom_tool_call" }> {
  return item.type === "custom_tool_call" && "call_id" in item;
}

/** A `runTools` tool: `{ type: "function", function: { function, parse?, name?, ... } }` or a `zodFunction(...)` tool. */
export interface RunnableToolLike {
  type: "function";
  function: { name?: string; function?: (...args: any[]) => unknown; [key: string]: unknown };
}

/**
 * Guards the tools of `client.chat.completions.runTools(...)`: each tool's function is decided
 * first, and a refusal is returned to the model as the tool's result (a thrown error would end
 * the run). One `runTools` run is one session unless the options name one.
 */
export function guardRunnableTools<T extends readonly RunnableToolLike[]>(
  warden: Warden,
  tools: T,
  options: GuardOptions = {},
): T {
  const guard = new ToolGuard(warden, options);
  return tools.map((tool) => guardRunnable(guard, tool)) as unknown as T;
}

function guardRunnable(guard: ToolGuard, tool: RunnableToolLike): RunnableToolLike {
  const parseable = tool as RunnableToolLike & {
    $brand?: string;
    $callback?: (...args: any[]) => unknown;
    $parseRaw?: unknown;
  };
  if (parseable.$brand === "auto-parseable-tool" && typeof parseable.$callback === "function") {
    // zodFunction() tools keep their callback in non-enumerable properties.
    const callback = parseable.$callback;
    const name = tool.function.name ?? "";
    const copy = { ...tool };
    Object.defineProperties(copy, {
      $brand: { value: parseable.$brand, enumerable: false },
      $parseRaw: { value: parseable.$parseRaw, enumerable: false },
      $callback: { value: guardedFunction(guard, name, callback), enumerable: false },
    });
    return copy;
  }
  const fn = tool.function.function;
  if (typeof fn !== "function") return tool;
  const name = tool.function.name || fn.name;
  return { ...tool, function: { ...tool.function, function: guardedFunction(guard, name, fn) } };
}

function guardedFunction(guard: ToolGuard, name: string, fn: (...args: any[]) => unknown) {
  return async (args: unknown, runner?: unknown, ...rest: unknown[]): Promise<unknown> => {
    // The runner object is the same for every call of one runTools run: it keys the run's session.
    const session = guard.session(typeof runner === "object" && runner !== null ? runner : undefined);
    const parsed = typeof args === "string" ? (parseArgs(args) ?? { input: args }) : args;
    const call = guard.call(name, parsed, session);
    const outcome = await guard.run(call, session, () => fn(args, runner, ...rest));
    return outcome.allowed ? outcome.output : outcome.message;
  };
}
