import { z } from "zod";
import { BUILTIN_RULES } from "../core/rules.js";
import type { PolicyEngine } from "../policy/engines.js";

/**
 * `judge:` in a policy: the second-tier reviewer model. Only plain data here, so the policy
 * layer can validate it without loading any client library.
 */
export const judgeSchema = z
  .object({
    provider: z.enum(["openai", "anthropic"]),
    /** Base URL of the endpoint (OpenAI-compatible `.../v1`, or the Anthropic API root). */
    url: z.url().optional(),
    model: z.string().min(1),
    /** Environment variable holding the API key; default OPENAI_API_KEY / ANTHROPIC_API_KEY. */
    api_key_env: z.string().min(1).optional(),
    timeout_ms: z.number().int().positive().max(600_000).optional(),
    /** An answer less sure than this falls back; 0..1, default 0.7. */
    min_confidence: z.number().min(0).max(1).optional(),
    /** Verdict when the judge cannot answer (timeout, error, malformed or unsure answer). */
    fallback: z.enum(["deny", "ask", "allow"]).optional(),
    /** `undecided`: also judge calls no rule, limit or check decided (instead of `default`). */
    for: z.enum(["undecided", "never"]).optional(),
    /** Most answers kept in memory, per (task, call). Default 1,000; 0 turns the cache off. */
    cache: z.number().int().nonnegative().max(1_000_000).optional(),
  })
  .strict();

export type RawJudge = z.infer<typeof judgeSchema>;

/** A `judge:` block with its defaults applied. */
export interface JudgeSpec {
  provider: "openai" | "anthropic";
  url?: string;
  model: string;
  apiKeyEnv: string;
  timeoutMs: number;
  minConfidence: number;
  fallback: "deny" | "ask" | "allow";
  /** Judge calls that nothing else decided. */
  undecided: boolean;
  cacheSize: number;
}

/** Applies the defaults. */
export function judgeSpec(raw: RawJudge): JudgeSpec {
  return {
    provider: raw.provider,
    url: raw.url,
    model: raw.model,
    apiKeyEnv: raw.api_key_env ?? (raw.provider === "openai" ? "OPENAI_API_KEY" : "ANTHROPIC_API_KEY"),
    timeoutMs: raw.timeout_ms ?? 10_000,
    minConfidence: raw.min_confidence ?? 0.7,
    fallback: raw.fallback ?? "deny",
    undecided: raw.for === "undecided",
    cacheSize: raw.cache ?? 1_000,
  };
}

/** The rule name of a judgement asked for because nothing else decided the call. */
export const JUDGE_UNDECIDED = BUILTIN_RULES.judgeUndecided;

/** `judge:`, registered with the policy compiler where the library is assembled. */
export const judgeEngine: PolicyEngine<RawJudge> = {
  key: "judge",
  schema: judgeSchema,
  compile: (raw) => ({ fields: { judge: judgeSpec(raw) } }),
};

declare module "../policy/engines.js" {
  interface EngineFields {
    /** The `judge:` reviewer, with defaults applied. */
    judge?: JudgeSpec;
  }
}
