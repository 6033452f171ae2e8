import type { Approvals } from "../../approvals/approvals.js";
import type { Call } from "../../core/index.js";
import type { Judge } from "../../judge/judge.js";
import type { JudgeSpec } from "../../judge/schema.js";
import type { CompiledLimit, CompiledPolicy, CompiledTool } from "../../policy/index.js";
import type { StateStore } from "../../stores/types.js";
import type { Session } from "../session.js";

/** What the stages after `evaluate` read for one call; the Warden builds it once per call. */
export interface DecideContext {
  readonly policy: CompiledPolicy;
  readonly call: Call;
  readonly session: Session | undefined;
  /** The tool's declaration, looked up once for every stage. */
  readonly decl: CompiledTool | undefined;
  /** The call's cost: its own `cost`, else the tool's declared one. */
  readonly cost: number;
  /** The limits whose conditions matched (`evaluate` collected them). */
  readonly limits: readonly CompiledLimit[];
  readonly store: StateStore;
  readonly approvals: Approvals;
  readonly now: () => number;
  /** Observe every decision (`serve --observe`), whatever the policy's `mode`. */
  readonly observeAll: boolean | undefined;
  /** The reviewer for a `judge:` spec (the Warden keeps one per spec, with its cache). */
  judge(spec: JudgeSpec): Judge;
  /** The task of the innermost scope that declares one. */
  scopeTask(): string | undefined;
  /** A pending approval was opened (the Warden audits its answer whoever gives it). */
  opened(approvalId: string): void;
}

/**
 * What a tool needs at decision time, from its declaration alone: whether `decide` may stay
 * synchronous. Read before the context is built, so a call that needs nothing builds none.
 */
export function needsState(
  policy: CompiledPolicy,
  decl: CompiledTool | undefined,
  cost: number,
  limits: readonly CompiledLimit[],
): boolean {
  return limits.length > 0 || (policy.budget !== undefined && cost > 0) || !!decl?.asyncChecks.length;
}
