import type { Decision } from "../../core/index.js";
import { applyJudgement, needsJudge } from "../../judge/apply.js";
import type { DecideContext } from "./context.js";

/** Asks the policy's judge about a call whose deciding rule is a judge rule; the answer (or its fallback) replaces that `ask`. */
export async function judgeStage(ctx: DecideContext, decision: Decision): Promise<Decision> {
  const { policy, call, session, decl } = ctx;
  if (!needsJudge(policy, decision)) return decision;
  const judgement = await ctx.judge(policy.judge!).review({
    task: ctx.scopeTask() ?? session?.task,
    call,
    risk: decl?.risk,
    sink: decl?.sink,
    labels: decision.labels,
    seen: session ? [...session.seen] : [],
  });
  return applyJudgement(policy, decision, judgement);
}
