import { AsyncLocalStorage } from "node:async_hooks";
import { randomBytes } from "node:crypto";
import type { StateStore } from "../stores/types.js";
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
  /** The token use a passing plan call reserved. */
  use?: PlanUse;
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
  /** The store plans are shared through (every replica redeems a token once); none on the memory store. */
  private readonly shared: StateStore | undefined;
  private readonly keyGiven: boolean;
  private keyLoaded: Promise<void> | undefined;
  /** Plans issued here on their way to the store. */
  private pending: Promise<unknown> = Promise.resolve();

  constructor(options: { key?: string | Buffer; now: () => number; store?: StateStore }) {
    this.registry = new PlanRegistry(options.key);
    this.now = options.now;
    this.keyGiven = options.key !== undefined;
    this.shared = options.store && options.store.kind !== "memory" ? options.store : undefined;
  }

  /**
   * Loads the plan key shared through the store (created by the first replica that needs it),
   * unless a key was given: a token issued by one replica verifies on every other.
   */
  loadKey(): Promise<void> {
    const store = this.shared;
    if (!store || this.keyGiven) return Promise.resolve();
    this.keyLoaded ??= (async () => {
      await store.putRecord(PLAN_KEY_RECORD, randomBytes(32).toString("base64"), 0, null, this.now());
      const record = await store.getRecord(PLAN_KEY_RECORD, this.now());
      if (!record) throw new Error("the shared plan key could not be read back from the store");
      this.registry.setKey(Buffer.from(record.value, "base64"));
    })().catch((error: unknown) => {
      this.keyLoaded = undefined;
      throw error;
    });
    return this.keyLoaded;
  }

  plan(steps: readonly PlanStep[], options: PlanOptions = {}): Plan {
    const plan = this.registry.create(steps, options, this.now());
    const store = this.shared;
    if (store) {
      const record = this.registry.export(plan.id)!;
      this.pending = this.pending
        .catch(() => {})
        .then(() => store.putRecord(planRecord(plan.id), record, 0, plan.expiresAt, this.now()));
    }
    return plan;
  }

  /** `plan`, once the plan is in the store (so another replica can redeem its tokens). */
  async createPlan(steps: readonly PlanStep[], options: PlanOptions = {}): Promise<Plan> {
    await this.loadKey();
    const plan = this.plan(steps, options);
    await this.pending;
    return plan;
  }

  /** Ends a plan; returns the session it governed, if any. */
  endPlan(plan: Plan | string): string | undefined {
    const session = this.registry.sessionOf(typeof plan === "string" ? plan : plan.id);
    this.registry.end(plan);
    if (this.shared) {
      const id = typeof plan === "string" ? plan : plan.id;
      this.shared.deleteRecord(planRecord(id)).catch(() => {});
    }
    return session;
  }

  /** The plan a call refers to: its token's, the bound plan, or its session's. */
  private planOf(call: PlannedCall, sessionPlan: string | undefined): string | undefined {
    if (typeof call.token === "string") return PlanRegistry.tokenPlan(call.token);
    const bound = this.binding.getStore()?.plan;
    if (bound) return bound.id;
    return this.registry.sessionPlan(call.session) ?? sessionPlan;
  }

  /** Whether the call's plan check goes through the store (a shared store and a plan to check). */
  needsStore(call: PlannedCall, sessionPlan: string | undefined): boolean {
    return this.shared !== undefined && this.planOf(call, sessionPlan) !== undefined;
  }

  /**
   * `check` against the plan's state in the store: read it, check, and write the reserved use
   * back by compare-and-set, so a token is redeemed exactly once across replicas. A refused call
   * gives its use back the same way.
   */
  async checkShared(
    call: PlannedCall,
    reserve: boolean,
    sessionPlan: string | undefined,
  ): Promise<AuthorityCheck | undefined> {
    const store = this.shared!;
    await this.pending.catch(() => {});
    await this.loadKey();
    const id = this.planOf(call, sessionPlan)!;
    for (let attempt = 0; attempt < 8; attempt++) {
      const record = await store.getRecord(planRecord(id), this.now());
      if (!record) this.registry.end(id);
      else if (!this.registry.adopt(record.value)) {
        return { finding: TAMPERED, settle: NOTHING_TO_SETTLE };
      }
      const result = this.check(call, reserve, sessionPlan);
      if (!result?.use || !record) return result;
      const state = this.registry.export(id)!;
      if (
        await store.putRecord(
          planRecord(id),
          state,
          record.version,
          result.use.state.plan.expiresAt,
          this.now(),
        )
      ) {
        const use = result.use;
        return {
          use,
          settle: (decision) => {
            if (decision.verdict !== "allow" && decision.verdict !== "flag") void this.releaseShared(id, use);
          },
        };
      }
      // Another replica changed the plan meanwhile: undo here and check again against its state.
      this.registry.release(result.use);
    }
    return {
      finding: {
        code: "plan.order",
        message: `plan \`${id}\` is busy (changed concurrently); try again`,
        verdict: "deny",
      },
      settle: NOTHING_TO_SETTLE,
    };
  }

  private async releaseShared(id: string, use: PlanUse): Promise<void> {
    const store = this.shared!;
    for (let attempt = 0; attempt < 8; attempt++) {
      const record = await store.getRecord(planRecord(id), this.now()).catch(() => undefined);
      if (!record || !this.registry.adopt(record.value)) return;
      this.registry.release(use);
      const state = this.registry.export(id)!;
      if (
        await store
          .putRecord(planRecord(id), state, record.version, use.state.plan.expiresAt, this.now())
          .catch(() => false)
      )
        return;
    }
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
  check(call: PlannedCall, reserve: boolean, sessionPlan?: string): AuthorityCheck | undefined {
    const bound = this.binding.getStore();
    const hasToken = typeof call.token === "string";
    if (!bound && !hasToken && this.registry.size === 0 && sessionPlan === undefined) return undefined;
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
      } else planId = this.registry.sessionPlan(call.session) ?? sessionPlan;
      if (planId === undefined) return undefined;
    }
    const result = this.registry.check(call, planId, this.now(), reserve);
    if ("code" in result) return { finding: result, settle: NOTHING_TO_SETTLE };
    const use: PlanUse = result;
    return {
      use,
      settle: reserve
        ? (decision) => {
            if (!mayRun(decision)) this.registry.release(use);
          }
        : NOTHING_TO_SETTLE,
    };
  }
}

const PLAN_KEY_RECORD = "plan-key";
const TAMPERED: Finding = {
  code: "plan.tampered",
  message: "the plan in the store does not match its signature (changed, forged, or signed with another key)",
  verdict: "deny",
};

function planRecord(id: string): string {
  return `plan:${id}`;
}

/** Adds a plan or scope finding to a decision: it denies, whatever else matched. */
export function withAuthorityFinding(decision: Decision, finding: Finding): Decision {
  return contribute(decision, { verdict: "deny", rule: finding.code, reason: finding.message }, finding);
}
