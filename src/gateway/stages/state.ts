import { answered } from "../../approvals/approvals.js";
import type { Call, Decision } from "../../core/index.js";
import { BUILTIN_RULES } from "../../core/index.js";
import type { CompiledLimit } from "../../policy/index.js";
import type { LimitBucket } from "../../stores/types.js";
import { contribute, amend } from "../combine.js";
import { hashCall } from "../hash-call.js";
import { valueAt } from "../inspect.js";
import { observes } from "../observe.js";
import type { DecideContext } from "./context.js";

/**
 * Limits, budget and approvals: a call that will run is counted in its limits and spends its
 * cost (a full bucket or an exhausted budget denies); an `ask` redeems an approval of this exact
 * call, or opens one. A call already denied, or one the monitor could not read, touches no counter.
 */
export async function stateStage(ctx: DecideContext, decision: Decision): Promise<Decision> {
  const { policy, call, cost } = ctx;
  if (
    decision.verdict === "deny" ||
    decision.rule === BUILTIN_RULES.malformedCall ||
    decision.rule === BUILTIN_RULES.internalError
  )
    return decision;
  const buckets = ctx.limits.map((limit) => bucketFor(limit, call));
  const budget = policy.budget;
  const budgetKey = budget && cost > 0 ? spendKey(budget.per, call) : undefined;
  if (budget && budgetKey && budget.askAbove !== undefined && cost > budget.askAbove) {
    decision = contribute(decision, {
      verdict: "ask",
      rule: BUILTIN_RULES.budgetAskAbove,
      reason: `cost ${cost} is above the approval threshold ${budget.askAbove}`,
    });
  }
  // An observed ask proceeds: no approval is opened, and (as enforcing an ask would) nothing is counted.
  if (decision.verdict === "ask" && observes(policy, call, decision, ctx.observeAll)) return decision;
  if (decision.verdict === "ask") {
    const trips = buckets.length ? await ctx.store.peek(buckets, ctx.now()) : [];
    if (trips.length) return tripped(decision, ctx.limits, buckets, trips);
    return pendingOrApproved(ctx, decision, buckets, budgetKey);
  }
  return consume(ctx, decision, buckets, budgetKey);
}

/** Counts the call in its limits and spends its cost; a full bucket or an exhausted budget denies. */
async function consume(
  ctx: DecideContext,
  decision: Decision,
  buckets: LimitBucket[],
  budgetKey: string | undefined,
): Promise<Decision> {
  if (buckets.length) {
    const trips = await ctx.store.consume(buckets, ctx.now());
    if (trips.length) return tripped(decision, ctx.limits, buckets, trips);
  }
  const { budget } = ctx.policy;
  if (budget && budgetKey) {
    const spent = await ctx.store.spend({ key: budgetKey, amount: ctx.cost, max: budget.max });
    if (!spent.ok) {
      return contribute(decision, {
        verdict: "deny",
        rule: BUILTIN_RULES.budget,
        reason: `budget exhausted: cost ${ctx.cost} with ${fmt(spent.spent)} of ${fmt(budget.max)} spent per ${budget.per}`,
      });
    }
    if (ctx.session && budget.per === "session") ctx.session.spend = spent.spent;
  }
  return decision;
}

/** An `ask`: an approval of this exact call lets it run once (and count); else a pending approval is opened. */
async function pendingOrApproved(
  ctx: DecideContext,
  decision: Decision,
  buckets: LimitBucket[],
  budgetKey: string | undefined,
): Promise<Decision> {
  const { call } = ctx;
  const callHash = hashCall(call);
  const approved = await ctx.approvals.redeem(callHash);
  if (approved) return consume(ctx, answered(decision, approved, 0), buckets, budgetKey);
  const pending = await ctx.approvals.request({
    call,
    callHash,
    rule: decision.rule,
    reason: decision.reason,
    findings: decision.findings,
  });
  ctx.opened(pending.id);
  return amend(decision, { approval: pending.id });
}

function tripped(
  decision: Decision,
  limits: readonly CompiledLimit[],
  buckets: LimitBucket[],
  trips: Array<{ key: string; resetAt: number | null; count: number }>,
): Decision {
  for (const trip of trips) {
    const i = buckets.findIndex((bucket) => bucket.key === trip.key);
    const limit = limits[i];
    if (!limit) continue;
    const reset = trip.resetAt ? `; resets at ${new Date(trip.resetAt).toISOString()}` : "";
    decision = contribute(decision, {
      verdict: limit.verdict,
      rule: limit.name,
      reason: limit.message ?? `limit \`${limit.name}\` reached: ${limit.describe}${reset}`,
    });
  }
  return decision;
}

/** The counter a call is counted in for one limit: `limit:<name>:<scope values>`. */
function bucketFor(limit: CompiledLimit, call: Call): LimitBucket {
  const parts = limit.per.map((scope) => {
    switch (scope) {
      case "agent":
        return `agent=${String(call.agent?.id ?? "anonymous")}`;
      case "session":
        return `session=${call.session ?? "none"}`;
      case "tool":
        return `tool=${call.tool}`;
      case "global":
        return "global";
      default: {
        const value = valueAt(call.args ?? {}, scope.slice(5).split("."));
        return `${scope}=${typeof value === "string" ? value : JSON.stringify(value)}`;
      }
    }
  });
  return { key: `limit:${limit.name}:${parts.join(":")}`, limit: limit.limit, windowMs: limit.windowMs };
}

function spendKey(per: "session" | "agent" | "global", call: Call): string {
  if (per === "session") return `spend:session=${call.session ?? "none"}`;
  if (per === "agent") return `spend:agent=${String(call.agent?.id ?? "anonymous")}`;
  return "spend:global";
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(2);
}
