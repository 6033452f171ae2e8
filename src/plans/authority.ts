import { AsyncLocalStorage } from "node:async_hooks";
import type { Decision, Finding } from "../core/index.js";
import { mayRun } from "../core/index.js";
import { contribute } from "../gateway/combine.js";
import { PlanRegistry } from "./plan.js";
import type { Plan, PlanOptions, PlannedCall, PlanStep, PlanUse } from "./plan.js";
import { checkScope, compileScope } from "./scope.js";
import type { CompiledScope, ScopeSpec } from "./scope.js";

/** What `runInPlan` and `scope` bind to a block of async work. */
interface Binding {
  plan?: Plan;
  scopes: readonly CompiledScope[];
}

/** The outcome of the plan and scope checks for one call; `settle` keeps or gives back a reserved token use. */
export interface AuthorityCheck {
  finding?: Finding;
  settle(decision: Decision): void;
}

const NOTHING_TO_SETTLE = () => {};

/**
 * Plans with single-use authority tokens, and scopes, for one Warden. `check` is what the
 * gateway asks per call; it returns undefined at once when no plan or scope applies.
 */
export class Authority {
  private readonly registry: PlanRegistry;
  private readonly binding = new AsyncLocalStorage<Binding>();
  private readonly now: () => number;

  constructor(options: { key?: string | Buffer; now: () => number }) {
    this.registry = new PlanRegistry(options.key);
    this.now = options.now;
  }

  plan(steps: readonly PlanStep[], options: PlanOptions = {}): Plan {
    return this.registry.create(steps, options, this.now());
  }

  endPlan(plan: Plan | string): void {
    this.registry.end(plan);
  }

  /** Runs `fn` with `plan` in force: each call inside must be the plan's next step (no token needed). */
  runInPlan<T>(plan: Plan, fn: () => T): T {
    const outer = this.binding.getStore();
    return this.binding.run({ plan, scopes: outer?.scopes ?? [] }, fn);
  }

  /** Runs `fn` inside a narrower scope; scopes nest, and every enclosing one must also hold. */
  scope<T>(spec: ScopeSpec, fn: () => T): T {
    const compiled = compileScope(spec);
    const outer = this.binding.getStore();
    return this.binding.run({ plan: outer?.plan, scopes: [...(outer?.scopes ?? []), compiled] }, fn);
  }

  /** The task of the innermost scope that declares one. */
  scopeTask(): string | undefined {
    const scopes = this.binding.getStore()?.scopes;
    if (!scopes) return undefined;
    for (let i = scopes.length - 1; i >= 0; i--) if (scopes[i].task !== undefined) return scopes[i].task;
    return undefined;
  }

  /**
   * Checks the call against the bound scopes and against its plan: the token it presents, the
   * plan bound by `runInPlan`, or the plan declared for its session. With `reserve` (decide), a
   * passing plan call takes its token use now; `settle` gives it back unless the call may run.
   */
  check(call: PlannedCall, reserve: boolean): AuthorityCheck | undefined {
    const bound = this.binding.getStore();
    const hasToken = typeof call.token === "string";
    if (!bound && !hasToken && this.registry.size === 0) return undefined;
    for (const scope of bound?.scopes ?? []) {
      const finding = checkScope(scope, call);
      if (finding) return { finding, settle: NOTHING_TO_SETTLE };
    }
    let planId: string | undefined;
    if (!hasToken) {
      if (bound?.plan) {
        if (!this.registry.verify(bound.plan)) {
          return {
            finding: {
              code: "plan.tampered",
              message: "the plan does not match its signature (changed, forged or ended)",
              verdict: "deny",
            },
            settle: NOTHING_TO_SETTLE,
          };
        }
        planId = bound.plan.id;
      } else planId = this.registry.sessionPlan(call.session);
      if (planId === undefined) return undefined;
    }
    const result = this.registry.check(call, planId, this.now(), reserve);
    if ("code" in result) return { finding: result, settle: NOTHING_TO_SETTLE };
    const use: PlanUse = result;
    return {
      settle: reserve
        ? (decision) => {
            if (!mayRun(decision)) this.registry.release(use);
          }
        : NOTHING_TO_SETTLE,
    };
  }
}

/** Adds a plan or scope finding to a decision: it denies, whatever else matched. */
export function withAuthorityFinding(decision: Decision, finding: Finding): Decision {
  return contribute(decision, { verdict: "deny", rule: finding.code, reason: finding.message }, finding);
}
