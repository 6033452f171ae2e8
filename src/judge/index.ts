/** The semantic judge: a second-tier reviewer model for calls a policy marks `verdict: judge`. */
export { applyJudgement, needsJudge } from "./apply.js";
export type { JudgedDecision } from "./apply.js";
export { Judge, judgeAnswerSchema, renderCall } from "./judge.js";
export type { JudgeAnswer, Judgement, JudgeOutcome, JudgeRequest } from "./judge.js";
export { JUDGE_UNDECIDED, judgeEngine, judgeSchema, judgeSpec } from "./schema.js";
export type { JudgeSpec, RawJudge } from "./schema.js";
