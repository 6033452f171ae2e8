import type { Warden } from "../gateway/warden.js";
import { guardTools as guardAiSdkTools } from "./ai-sdk/index.js";
import { guardRunnableTools as guardAnthropicRunnable } from "./anthropic/index.js";
import type { GuardOptions } from "./guard.js";
import { guardTools as guardLangChainTools } from "./langchain/index.js";
import { guardRunnableTools as guardOpenAIRunnable } from "./openai/index.js";
import { guardAgent, guardTools as guardFunctionTools } from "./openai-agents/index.js";

export { outputText, parseArgs, refusalError, refusalText, ToolGuard, toArgs } from "./guard.js";
export type { ApprovalAnswer, Approver, GuardOptions, GuardOutcome } from "./guard.js";

/** The SDKs `protect` recognises. */
export type Sdk = "openai" | "anthropic" | "ai-sdk" | "langchain" | "openai-agents";

export interface ProtectOptions extends GuardOptions {
  /** Which SDK the tools are for, when their shape does not tell. */
  sdk?: Sdk;
}

/**
 * Guards every tool a host hands to its SDK, in that SDK's own shape: OpenAI `runTools` tools,
 * Anthropic tool-runner tools, an AI SDK `tools` record, LangChain tools, or an OpenAI Agents SDK
 * `Agent` or its function tools. The result replaces the original where the SDK takes it.
 */
export function protect<T>(warden: Warden, tools: T, options: ProtectOptions = {}): T {
  const { sdk = detectSdk(tools), ...guard } = options;
  switch (sdk) {
    case "openai":
      return guardOpenAIRunnable(warden, tools as never, guard) as T;
    case "anthropic":
      return guardAnthropicRunnable(warden, tools as never, guard) as T;
    case "ai-sdk":
      return guardAiSdkTools(warden, tools as never, guard) as T;
    case "langchain":
      return guardLangChainTools(warden, tools as never, guard) as T;
    case "openai-agents":
      return (
        isAgent(tools)
          ? guardAgent(warden, tools as never, guard)
          : guardFunctionTools(warden, tools as never, guard)
      ) as T;
    default:
      throw new TypeError(
        "toolwarden protect: cannot tell which SDK these tools are for; pass { sdk: 'openai' | 'anthropic' | 'ai-sdk' | 'langchain' | 'openai-agents' }",
      );
  }
}

/** Which SDK a tool collection belongs to, from its shape; undefined when it is unclear. */
export function detectSdk(tools: unknown): Sdk | undefined {
  if (isAgent(tools)) return "openai-agents";
  const items = Array.isArray(tools) ? tools : isRecord(tools) ? Object.values(tools) : [];
  if (!items.length) return undefined;
  const kinds = new Set(items.map(toolKind));
  if (kinds.size !== 1) return undefined;
  return [...kinds][0];
}

function toolKind(tool: unknown): Sdk | undefined {
  if (!isRecord(tool)) return undefined;
  if (typeof tool.invoke === "function" && ("lc_namespace" in tool || typeof tool._call === "function"))
    return "langchain";
  if (tool.type === "function" && typeof tool.invoke === "function" && "needsApproval" in tool)
    return "openai-agents";
  if (tool.type === "function" && isRecord(tool.function)) {
    if (
      typeof tool.function.function === "function" ||
      typeof (tool as { $callback?: unknown }).$callback === "function"
    )
      return "openai";
  }
  if (typeof tool.run === "function" && typeof tool.name === "string") return "anthropic";
  if ("inputSchema" in tool && (typeof tool.execute === "function" || tool.execute === undefined))
    return "ai-sdk";
  return undefined;
}

function isAgent(value: unknown): boolean {
  return (
    isRecord(value) &&
    typeof value.getAllTools === "function" &&
    typeof value.clone === "function" &&
    Array.isArray(value.tools)
  );
}

function isRecord(value: unknown): value is Record<string, any> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
