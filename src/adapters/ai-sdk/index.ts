/**
 * toolwarden/ai-sdk: guard a Vercel AI SDK `tools` record, so every step of `generateText` /
 * `streamText` (`stopWhen`, multi-step loops) goes through the policy. `execute` is where deny and
 * taint act; an `ask` verdict becomes the tool's `needsApproval`, answered by the SDK's own
 * `tool-approval-request` / `tool-approval-response` round trip.
 * Structural types only: `ai` is an optional peer and is never loaded here.
 */
import type { Warden } from "../../gateway/warden.js";
import { type ApprovalAnswer, type GuardOptions, refusalError, ToolGuard } from "../guard.js";

export type { GuardOptions } from "../guard.js";

/** What the AI SDK passes to `execute` and `needsApproval` (the parts used here). */
export interface ToolCallOptions {
  toolCallId: string;
  messages: readonly unknown[];
  [key: string]: unknown;
}

/** A `tool({...})` as the AI SDK defines it; tools without `execute` are left as they are. */
export interface AiSdkToolLike {
  execute?: (input: any, options: any) => unknown;
  needsApproval?: boolean | ((input: any, options: any) => boolean | PromiseLike<boolean>);
  [key: string]: unknown;
}

export interface AiSdkGuardOptions extends GuardOptions {
  /** Map the `ask` verdict to `needsApproval` (AI SDK 5.1+/6). Default true; false refuses asks in `execute`. */
  needsApproval?: boolean;
}

/**
 * Guards every tool of an AI SDK `tools` record. A refused call throws inside `execute`, which
 * the SDK reports to the model as a tool error with the reason (and the loop goes on); the error
 * is a `PolicyDeniedError` or `ApprovalRequiredError` for hosts that inspect `tool-error` parts.
 *
 * Sessions: one per conversation, keyed by the first message object of the prompt (a new
 * `prompt` string is a new run; a `messages` array the host keeps appending to is one
 * conversation, which approvals need), unless the options or `warden.runInSession` name one.
 */
export function guardTools<T extends Record<string, AiSdkToolLike>>(
  warden: Warden,
  tools: T,
  options: AiSdkGuardOptions = {},
): T {
  const { needsApproval: mapAsk = true, ...guardOptions } = options;
  const guard = new ToolGuard(warden, guardOptions);
  const out: Record<string, AiSdkToolLike> = {};
  for (const [name, tool] of Object.entries(tools)) {
    const execute = tool.execute;
    if (typeof execute !== "function") {
      out[name] = tool;
      continue;
    }
    const guarded: AiSdkToolLike = {
      ...tool,
      execute: async (input: unknown, opts: ToolCallOptions) => {
        const session = guard.session(runKey(opts));
        const call = guard.call(name, input, session);
        const outcome = await guard.run(
          call,
          session,
          () => execute(input, opts),
          () => sdkApproval(opts),
        );
        if (!outcome.allowed) throw refusalError(outcome.decision, outcome.message);
        return outcome.output;
      },
    };
    if (mapAsk) {
      const own = tool.needsApproval;
      guarded.needsApproval = async (input: unknown, opts: ToolCallOptions) => {
        if (own === true) return true;
        if (typeof own === "function" && (await own(input, opts))) return true;
        const session = guard.session(runKey(opts));
        const decision = guard.evaluate(guard.call(name, input, session));
        return decision.verdict === "ask" && decision.enforced !== false;
      };
    }
    out[name] = guarded;
  }
  return out as T;
}

/** The first prompt message: the same object on every step of one run (and of a kept conversation). */
function runKey(options: ToolCallOptions | undefined): object | undefined {
  const first = options?.messages?.[0];
  return first !== null && typeof first === "object" ? first : undefined;
}

/**
 * The approval a human gave this exact tool call through the SDK: a `tool-approval-request` for
 * the call id in an assistant message and an approving `tool-approval-response` for it.
 */
function sdkApproval(options: ToolCallOptions | undefined): ApprovalAnswer | undefined {
  if (!options?.toolCallId || !Array.isArray(options.messages)) return undefined;
  const requested = new Set<string>();
  for (const part of parts(options.messages, "assistant")) {
    if (part.type === "tool-approval-request" && part.toolCallId === options.toolCallId)
      requested.add(String(part.approvalId));
  }
  if (!requested.size) return undefined;
  for (const part of parts(options.messages, "tool")) {
    if (
      part.type === "tool-approval-response" &&
      part.approved === true &&
      requested.has(String(part.approvalId))
    ) {
      return { approved: true, by: `ai-sdk:${String(part.approvalId)}` };
    }
  }
  return undefined;
}

function* parts(messages: readonly unknown[], role: string): Generator<Record<string, unknown>> {
  for (const message of messages) {
    if (!message || typeof message !== "object") continue;
    const { role: r, content } = message as { role?: unknown; content?: unknown };
    if (r !== role || !Array.isArray(content)) continue;
    for (const part of content) if (part && typeof part === "object") yield part as Record<string, unknown>;
  }
}
