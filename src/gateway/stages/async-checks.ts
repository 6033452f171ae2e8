import type { Decision, Finding } from "../../core/index.js";
import { contribute } from "../combine.js";
import { valueAt } from "../inspect.js";
import type { DecideContext } from "./context.js";

/** The I/O halves of constraints (`url.resolve`, `path.realpath`), for calls not already denied. */
export async function asyncChecksStage(ctx: DecideContext, decision: Decision): Promise<Decision> {
  const { decl, call } = ctx;
  if (!decl?.asyncChecks.length || decision.verdict === "deny") return decision;
  const findings: Finding[] = [];
  await Promise.all(
    decl.asyncChecks.map(async (check) => {
      const value = valueAt(call.args ?? {}, check.path);
      if (value === undefined) return;
      const before = findings.length;
      await check.check(value, check.arg, findings);
      for (let i = before; i < findings.length; i++) findings[i].verdict = decl.onViolation;
    }),
  );
  for (const finding of findings) {
    decision = contribute(
      decision,
      { verdict: finding.verdict ?? "deny", rule: finding.code, reason: finding.message },
      finding,
    );
  }
  return decision;
}
