import type { Call, Decision } from "../core/index.js";
import { BUILTIN_RULES, mayRun } from "../core/index.js";
import type { Warden } from "../gateway/index.js";

/**
 * One trace line: `{session?, input, labels}` records labelled input; `{session?, task}` sets what
 * the user asked for (`session.task` in `expr`); `{session?, tool, args, result?}` is decided, and
 * an allowed step's result becomes that tool's output.
 */
export async function replayStep(
  warden: Warden,
  step: unknown,
  sessions: Set<string>,
): Promise<Decision | { recorded: true }> {
  if (step === null || typeof step !== "object" || Array.isArray(step))
    return lineError("a step is a JSON object");
  const { session: sessionId = "default", result, input, labels, ...call } = step as Record<string, unknown>;
  if (typeof sessionId !== "string") return lineError("`session` must be a string");
  sessions.add(sessionId);
  const session = warden.session({ id: sessionId, agent: call.agent as Call["agent"] });
  if ("input" in (step as object)) {
    if (!Array.isArray(labels) || !labels.every((l) => typeof l === "string")) {
      return lineError("an input line needs `labels`: a list of strings");
    }
    session.input(input, { labels });
    return { recorded: true };
  }
  if ("task" in call && !("tool" in call)) {
    if (typeof call.task !== "string") return lineError("`task` must be a string");
    session.task = call.task;
    return { recorded: true };
  }
  const full = { ...call, session: sessionId, labels: labels as Call["labels"] } as Call;
  if (full.labels === undefined) delete full.labels;
  const decision = await warden.decide(full);
  if (mayRun(decision)) {
    if (result !== undefined) warden.recordOutput(full, result, session);
    else warden.recordCall(full, session);
  }
  return decision;
}

/** The Decision for an input line that could not be read: deny, with the reason. */
export function lineError(reason: string): Decision {
  return {
    verdict: "deny",
    rule: BUILTIN_RULES.malformedCall,
    reason: `malformed call: ${reason}`,
    findings: [],
    labels: [],
  };
}
