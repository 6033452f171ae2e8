/**
 * toolwarden/anthropic: run Anthropic Messages API `tool_use` blocks through the policy.
 * `guardToolUses` answers them with `tool_result` blocks (`is_error: true` and the reason on a
 * refusal); `guardRunnableTools` guards the tools of `client.beta.messages.toolRunner(...)`.
 * Structural types only: `@anthropic-ai/sdk` is an optional peer and is never loaded here.
 */
import type { Call, Decision } from "../../core/index.js";
import type { Session } from "../../gateway/session.js";
import type { Warden } from "../../gateway/warden.js";
import { type GuardOptions, outputText, refusalError, ToolGuard } from "../guard.js";

export type { GuardOptions } from "../guard.js";

/** A content block of an assistant message; only `tool_use` blocks are acted on. */
export type ContentBlock = { type: "tool_use"; id: string; name: string; input: unknown } | { type: string };

/** A `tool_result` block for the next user message. */
export interface ToolResultBlock {
  type: "tool_result";
  tool_use_id: string;
  /** Text, or the content blocks (text, image, document...) a tool returned as they are. */
  content: string | any[];
  is_error?: boolean;
}

/** What a tool function receives besides its input. */
export interface ToolUseContext {
  /** The `tool_use` block's id. */
  toolUseId: string;
  session: Session;
  call: Call;
}

/** A host tool: the block's `input` in; a string, content blocks or anything JSON-able out. */
export type ToolFunction = (input: any, context: ToolUseContext) => unknown;

/** Executes the `tool_use` blocks of one agent run through the policy. */
export interface ToolUseGuard {
  /** The run's session (see `GuardOptions.session`). */
  readonly session: Session;
  /** One `tool_result` block per `tool_use` block of `content`, in order; send them as the next user message. */
  toolResults(content: readonly ContentBlock[]): Promise<ToolResultBlock[]>;
  /** Every decision so far, by `tool_use` id. */
  readonly decisions: ReadonlyMap<string, Decision>;
}

/**
 * Guards a record of tool functions for one agent run. Blocks run one at a time in the model's
 * order, so an earlier output is known when a later call is checked.
 *
 * ```ts
 * const tools = guardToolUses(warden, { web_fetch, send_email });
 * messages.push({ role: "assistant", content: msg.content }, { role: "user", content: await tools.toolResults(msg.content) });
 * ```
 */
export function guardToolUses(
  warden: Warden,
  tools: Record<string, ToolFunction>,
  options: GuardOptions = {},
): ToolUseGuard {
  const guard = new ToolGuard(warden, options);
  const decisions = new Map<string, Decision>();
  return {
    get session() {
      return guard.session();
    },
    decisions,
    async toolResults(content) {
      const results: ToolResultBlock[] = [];
      for (const block of content) {
        if (!isToolUse(block)) continue;
        const session = guard.session();
        const call = guard.call(block.name, block.input, session);
        const outcome = await guard.runNamed(tools, call, session, (fn) =>
          fn(block.input, { toolUseId: block.id, session, call }),
        );
        decisions.set(block.id, outcome.decision);
        results.push(
          outcome.allowed
            ? { type: "tool_result", tool_use_id: block.id, content: resultContent(outcome.output) }
            : { type: "tool_result", tool_use_id: block.id, content: outcome.message, is_error: true },
        );
      }
      return results;
    },
  };
}

function isToolUse(block: ContentBlock): block is Extract<ContentBlock, { type: "tool_use" }> {
  return block.type === "tool_use" && "id" in block;
}

function resultContent(output: unknown): ToolResultBlock["content"] {
  if (
    Array.isArray(output) &&
    output.every((b) => b !== null && typeof b === "object" && typeof b.type === "string")
  ) {
    return output;
  }
  return outputText(output);
}

/** A tool-runner tool (`betaTool`, `betaZodTool` or a literal): a name and a `run` function. */
export interface RunnableToolLike {
  name: string;
  run: (input: any, context?: any) => unknown;
}

/**
 * Guards the tools of `client.beta.messages.toolRunner({ tools })`: each `run` is decided first;
 * a refusal is thrown, which the runner sends back as a `tool_result` with `is_error: true`.
 * The tool runner names no run, so one guarded set is one session unless the options name one
 * (or `warden.runInSession` binds one): guard the tools once per run.
 */
export function guardRunnableTools<T extends readonly RunnableToolLike[]>(
  warden: Warden,
  tools: T,
  options: GuardOptions = {},
): T {
  const guard = new ToolGuard(warden, options);
  return tools.map((tool) => ({
    ...tool,
    run: async (input: unknown, context?: unknown) => {
      const session = guard.session();
      const call = guard.call(tool.name, input, session);
      const outcome = await guard.run(call, session, () => tool.run(input, context));
      if (!outcome.allowed) throw refusalError(outcome.decision, outcome.message);
      return outcome.output;
    },
  })) as unknown as T;
}
