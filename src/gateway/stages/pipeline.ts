import type { Decision } from "../../core/index.js";
import { observeStage } from "../observe.js";
import { asyncChecksStage } from "./async-checks.js";
import type { DecideContext } from "./context.js";
import { judgeStage } from "./judge.js";
import { stateStage } from "./state.js";

/** One step of `decide` after `evaluate` (and the plan and scope checks), with why it sits where it does. */
export interface DecideStage {
  name: string;
  why: string;
  run(ctx: DecideContext, decision: Decision): Decision | Promise<Decision>;
}

/**
 * The stages of `decide`, in order (as OPA lists its compiler stages). Before them, `evaluate`
 * (constraints, detectors, rules, engines: pure, no I/O) and the plan and scope checks; after
 * them, the session's report and the audit record, which may still deny if the record cannot be kept.
 */
export const DECIDE_STAGES: readonly DecideStage[] = [
  {
    name: "async-checks",
    why: "first: the I/O halves of constraints (DNS, realpath) can deny, and a denied call needs neither the judge nor a counter",
    run: asyncChecksStage,
  },
  {
    name: "judge",
    why: "after every check, so a call already denied is never sent to a model; before the counters, because the judge's answer decides whether the call runs and so whether it counts",
    run: judgeStage,
  },
  {
    name: "limits-budget-approvals",
    why: "after every source of a verdict: only a call that will run is counted and spends its cost, and an ask first redeems or opens an approval of this exact call",
    run: stateStage,
  },
  {
    name: "observe",
    why: "last: it sees the final would-be verdict and lifts only what the policy observes (`mode: observe`, `enforce: false`); the counters already counted as if enforced",
    run: (ctx, decision) => observeStage(ctx.policy, ctx.call, decision, ctx.observeAll),
  },
];

/** Runs the stages in order; a stage that throws is the caller's internal error. */
export async function runStages(ctx: DecideContext, decision: Decision): Promise<Decision> {
  for (const stage of DECIDE_STAGES) decision = await stage.run(ctx, decision);
  return decision;
}
