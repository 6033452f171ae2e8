import { createHmac, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { createHash } from "node:crypto";
import { canonicalJson } from "../core/canonical.js";
import { ToolwardenError } from "../core/index.js";
import type { Call, Finding } from "../core/index.js";
import { compileWhen } from "../policy/conditions.js";
import type { Condition } from "../policy/conditions.js";
import { argsContext } from "./context.js";

/** One step of a plan: the tool, optional value tests on its arguments, how often it may run. */
export interface PlanStep {
  tool: string;
  /** `{ path: { prefix: "/tmp/" } }`: each entry is a `when` value test (`args.<name>: ...`). */
  args?: Record<string, unknown>;
  /** How many calls the step's token authorizes. Default 1 (single use). */
  max_calls?: number;
}

export interface PlanOptions {
  /** The session the plan governs: its calls must then follow the plan, token or not. */
  session?: string;
  /** How long the plan and its tokens stay valid (ms). Default 10 minutes. */
  ttlMs?: number;
}

/** A declared plan as the host holds it: signed, with one authority token per step. */
export interface Plan {
  id: string;
  session?: string;
  steps: PlanStep[];
  issuedAt: number;
  expiresAt: number;
  /** SHA-256 over the canonical plan (id, session, steps, times). */
  hash: string;
  /** HMAC-SHA256 of `hash` with the plan key. */
  signature: string;
  /** `tokens[i]` authorizes step `i`: `max_calls` uses, in order, until `expiresAt`. */
  tokens: string[];
}

/** A call that presents an authority token. */
export type PlannedCall = Call & { token?: string };

/** Why a call breaks its plan: `plan.outside`, `plan.order`, `plan.replay`, `plan.expired`, `plan.args`, `plan.tampered`. */
export type PlanFindingCode =
  | "plan.outside"
  | "plan.order"
  | "plan.replay"
  | "plan.expired"
  | "plan.args"
  | "plan.tampered";

interface PlanState {
  plan: Plan;
  checks: Array<Condition | undefined>;
  /** Calls counted per step (reserved ones included). */
  uses: number[];
  /** The furthest step used so far; -1 before the first. */
  position: number;
}

/** A passed check: the step it used, and how to release it if the call does not run after all. */
export interface PlanUse {
  state: PlanState;
  step: number;
  previous: number;
}

const TOKEN_PREFIX = "twp1";
const DEFAULT_TTL = 10 * 60_000;
const MAX_PLANS = 10_000;
const MAX_STEPS = 1_000;

/**
 * The plans a Warden issued. Plans live in this process (tokens do not survive a restart unless
 * the key is fixed and the plan re-issued); a plan is authority to narrow, never to widen: a call
 * in the plan still goes through the policy.
 */
export class PlanRegistry {
  private key: Buffer;
  private readonly plans = new Map<string, PlanState>();
  private readonly bySession = new Map<string, string>();

  constructor(key: string | Buffer | undefined) {
    this.key = key === undefined ? randomBytes(32) : Buffer.isBuffer(key) ? key : Buffer.from(key, "utf8");
  }

  get size(): number {
    return this.plans.size;
  }

  /** Replaces the signing key (the key shared through the state store), before any plan is issued. */
  setKey(key: Buffer): void {
    this.key = key;
  }

  /** The plan id a token names (unverified: `check` verifies it), or undefined. */
  static tokenPlan(token: string): string | undefined {
    const parts = token.split(".");
    return parts.length === 4 && parts[0] === TOKEN_PREFIX ? parts[1] : undefined;
  }

  /** A plan's state as the store keeps it: the signed plan, the uses per step, the position. */
  export(id: string): string | undefined {
    const state = this.plans.get(id);
    return state && JSON.stringify({ plan: state.plan, uses: state.uses, position: state.position });
  }

  /**
   * Takes a plan's state from the store (written by this or another replica): kept only if its
   * signature verifies with this registry's key. Returns false otherwise.
   */
  adopt(text: string): boolean {
    let record: { plan: Plan; uses: number[]; position: number };
    try {
      record = JSON.parse(text);
    } catch {
      return false;
    }
    const { plan } = record;
    if (!plan || typeof plan.id !== "string" || !Array.isArray(plan.steps)) return false;
    const existing = this.plans.get(plan.id);
    if (existing) {
      existing.uses = [...record.uses];
      existing.position = record.position;
      return true;
    }
    const hash = bodyHash(plan);
    if (hash === undefined) return false;
    if (hash !== plan.hash || !equal(plan.signature, this.mac(`plan\0${hash}`))) return false;
    const checks = plan.steps.map((step, i) => compileStep(step, i));
    this.plans.set(plan.id, {
      plan: deepFreeze(plan),
      checks,
      uses: [...record.uses],
      position: record.position,
    });
    if (plan.session !== undefined) this.bySession.set(plan.session, plan.id);
    return true;
  }

  /** The session a plan governs. */
  sessionOf(id: string): string | undefined {
    return this.plans.get(id)?.plan.session;
  }

  /** Whether this registry holds the plan. */
  has(id: string): boolean {
    return this.plans.has(id);
  }

  /** Declares a plan; throws `ToolwardenError("plan_invalid")` for a malformed step. */
  create(steps: readonly PlanStep[], options: PlanOptions, now: number): Plan {
    if (!Array.isArray(steps) || steps.length === 0 || steps.length > MAX_STEPS) {
      throw new ToolwardenError("plan_invalid", `a plan is a list of 1 to ${MAX_STEPS} steps`);
    }
    const ttl = options.ttlMs ?? DEFAULT_TTL;
    if (!Number.isFinite(ttl) || ttl <= 0)
      throw new ToolwardenError("plan_invalid", "`ttlMs` must be a positive number");
    const copied: PlanStep[] = JSON.parse(JSON.stringify(steps));
    const checks = copied.map((step, i) => compileStep(step, i));
    this.prune(now);
    if (this.plans.size >= MAX_PLANS)
      throw new ToolwardenError("plan_invalid", `too many live plans (${MAX_PLANS}); end some with endPlan`);
    const id = randomUUID();
    const body = { id, session: options.session, steps: copied, issuedAt: now, expiresAt: now + ttl };
    const hash = planHash(body);
    const plan: Plan = {
      ...body,
      hash,
      signature: this.mac(`plan\0${hash}`),
      tokens: copied.map((_, i) => `${TOKEN_PREFIX}.${id}.${i}.${this.mac(`token\0${hash}\0${i}`)}`),
    };
    // The registry keeps its own frozen copy: the host's object may be changed, ours may not.
    const kept = deepFreeze(JSON.parse(JSON.stringify(plan)) as Plan);
    this.plans.set(id, { plan: kept, checks, uses: copied.map(() => 0), position: -1 });
    if (options.session !== undefined) this.bySession.set(options.session, id);
    return plan;
  }

  /** Ends a plan: its tokens stop working and its session is free of it. */
  end(planOrId: Plan | string): void {
    const id = typeof planOrId === "string" ? planOrId : planOrId.id;
    const state = this.plans.get(id);
    if (!state) return;
    this.plans.delete(id);
    if (state.plan.session !== undefined && this.bySession.get(state.plan.session) === id)
      this.bySession.delete(state.plan.session);
  }

  /** The plan that governs a session's calls, if one was declared for it. */
  sessionPlan(session: string | undefined): string | undefined {
    return session === undefined || this.bySession.size === 0 ? undefined : this.bySession.get(session);
  }

  /** Whether `plan` is exactly what this registry signed (nothing in it was changed). */
  verify(plan: Plan): boolean {
    const state = plan && typeof plan.id === "string" ? this.plans.get(plan.id) : undefined;
    if (!state) return false;
    const hash = bodyHash(plan);
    if (hash === undefined) return false;
    return (
      hash === state.plan.hash && equal(plan.hash, hash) && equal(plan.signature, this.mac(`plan\0${hash}`))
    );
  }

  /**
   * Checks a call against a plan: by its token, or (`planId`, no token) by finding the step its
   * tool stands at. With `reserve`, a passing call counts at once, so two concurrent calls
   * cannot both spend one single-use token; `release` undoes it if the call does not run.
   */
  check(call: PlannedCall, planId: string | undefined, now: number, reserve: boolean): Finding | PlanUse {
    let state: PlanState | undefined;
    let step: number | undefined;
    if (typeof call.token === "string") {
      const parsed = this.parseToken(call.token);
      if (!parsed)
        return finding("plan.tampered", "the authority token was not issued by this warden or was altered");
      ({ state, step } = parsed);
    } else {
      state = planId === undefined ? undefined : this.plans.get(planId);
      if (!state) return finding("plan.tampered", "the plan is not one this warden issued (or it was ended)");
    }
    const { plan } = state;
    if (now > plan.expiresAt)
      return finding(
        "plan.expired",
        `plan \`${plan.id}\` expired at ${new Date(plan.expiresAt).toISOString()}`,
      );
    if (plan.session !== undefined && call.session !== plan.session) {
      return finding(
        "plan.outside",
        `plan \`${plan.id}\` belongs to session \`${plan.session}\`, not \`${call.session ?? "none"}\``,
      );
    }
    const tool = call.tool;
    const max = (i: number) => plan.steps[i].max_calls ?? 1;
    if (step === undefined) {
      const at = state.position;
      if (at >= 0 && plan.steps[at].tool === tool && state.uses[at] < max(at)) step = at;
      else if (plan.steps[at + 1]?.tool === tool) step = at + 1;
      else {
        const later = plan.steps.findIndex((s, i) => i > at + 1 && s.tool === tool);
        if (later >= 0)
          return finding(
            "plan.order",
            `\`${tool}\` is step ${later + 1} of the plan; step ${at + 2} (\`${plan.steps[at + 1]?.tool}\`) comes first`,
          );
        const earlier = plan.steps.findIndex((s, i) => i <= at && s.tool === tool);
        if (earlier >= 0 && earlier === at)
          return finding("plan.replay", `step ${at + 1} (\`${tool}\`) has used its ${max(at)} call(s)`);
        if (earlier >= 0)
          return finding(
            "plan.order",
            `step ${earlier + 1} (\`${tool}\`) is already past; the plan is at step ${at + 1}`,
          );
        return finding("plan.outside", `\`${tool}\` is not in plan \`${plan.id}\``);
      }
    } else {
      if (plan.steps[step].tool !== tool) {
        return finding(
          "plan.outside",
          `the token is for step ${step + 1} (\`${plan.steps[step].tool}\`), not for \`${tool}\``,
        );
      }
      if (state.uses[step] >= max(step))
        return finding("plan.replay", `the token of step ${step + 1} (\`${tool}\`) was already used`);
      if (step < state.position)
        return finding(
          "plan.order",
          `step ${step + 1} (\`${tool}\`) is already past; the plan is at step ${state.position + 1}`,
        );
      if (step > state.position + 1) {
        return finding(
          "plan.order",
          `step ${step + 1} (\`${tool}\`) comes before step ${state.position + 2} (\`${plan.steps[state.position + 1].tool}\`) ran`,
        );
      }
    }
    const test = state.checks[step];
    let ok: boolean;
    try {
      ok = test === undefined || test(argsContext(call));
    } catch {
      ok = false;
    }
    if (!ok)
      return finding(
        "plan.args",
        `the arguments of \`${tool}\` are outside step ${step + 1}'s constraints ${JSON.stringify(plan.steps[step].args)}`,
      );
    const use: PlanUse = { state, step, previous: state.position };
    if (reserve) {
      state.uses[step]++;
      if (step > state.position) state.position = step;
    }
    return use;
  }

  /** Gives back a reserved use (the call was refused or is waiting for approval). */
  release(use: PlanUse): void {
    const { state, step, previous } = use;
    state.uses[step] = Math.max(0, state.uses[step] - 1);
    if (state.position === step && state.uses[step] === 0) state.position = previous;
  }

  private parseToken(token: string): { state: PlanState; step: number } | undefined {
    const parts = token.split(".");
    if (parts.length !== 4 || parts[0] !== TOKEN_PREFIX || !/^\d{1,4}$/.test(parts[2])) return undefined;
    const state = this.plans.get(parts[1]);
    const step = Number(parts[2]);
    if (!state || step >= state.plan.steps.length) return undefined;
    return equal(parts[3], this.mac(`token\0${state.plan.hash}\0${step}`)) ? { state, step } : undefined;
  }

  private mac(text: string): string {
    return createHmac("sha256", this.key).update(text).digest("base64url");
  }

  /** Drops plans that expired (and are bound to no session, whose calls they must keep refusing). */
  private prune(now: number): void {
    if (this.plans.size < MAX_PLANS / 2) return;
    for (const [id, state] of this.plans) {
      if (
        state.plan.expiresAt < now &&
        (state.plan.session === undefined || this.bySession.get(state.plan.session) !== id)
      )
        this.plans.delete(id);
    }
  }
}

function compileStep(step: PlanStep, i: number): Condition | undefined {
  const where = `plan step ${i + 1}`;
  if (!step || typeof step !== "object" || typeof step.tool !== "string" || step.tool.length === 0) {
    throw new ToolwardenError("plan_invalid", `${where}: \`tool\` must be a non-empty string`);
  }
  if (step.max_calls !== undefined && (!Number.isSafeInteger(step.max_calls) || step.max_calls < 1)) {
    throw new ToolwardenError("plan_invalid", `${where}: \`max_calls\` must be a positive integer`);
  }
  if (step.args === undefined) return undefined;
  if (step.args === null || typeof step.args !== "object" || Array.isArray(step.args)) {
    throw new ToolwardenError("plan_invalid", `${where}: \`args\` maps argument names to value tests`);
  }
  const problems: string[] = [];
  const when = Object.fromEntries(Object.entries(step.args).map(([arg, test]) => [`args.${arg}`, test]));
  const condition = compileWhen(when, [], (path, message) => problems.push(`${path.join(".")}: ${message}`), {
    flows: false,
    seen: false,
    findings: false,
    valueSets: new Set(),
  });
  if (problems.length) throw new ToolwardenError("plan_invalid", `${where}: ${problems.join("; ")}`);
  return condition;
}

/** The hash of a plan's signed body as it stands now, or undefined when it cannot be hashed. */
function bodyHash(plan: Plan): string | undefined {
  try {
    return planHash({
      id: plan.id,
      session: plan.session,
      steps: plan.steps,
      issuedAt: plan.issuedAt,
      expiresAt: plan.expiresAt,
    });
  } catch {
    return undefined;
  }
}

function planHash(body: Pick<Plan, "id" | "session" | "steps" | "issuedAt" | "expiresAt">): string {
  return createHash("sha256")
    .update(canonicalJson({ ...body, session: body.session ?? null }))
    .digest("hex");
}

function finding(code: PlanFindingCode, message: string): Finding {
  return { code, message, verdict: "deny" };
}

function equal(a: unknown, b: string): boolean {
  if (typeof a !== "string" || a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const item of Object.values(value)) deepFreeze(item);
    Object.freeze(value);
  }
  return value;
}
