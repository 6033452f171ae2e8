import type { CompiledLimit, LimitScope } from "../compiled.js";
import { compileWhen } from "../conditions.js";
import type { CompileState } from "./state.js";
import { toolGlobs } from "./rules.js";

const UNITS: Record<string, number> = {
  s: 1e3,
  sec: 1e3,
  second: 1e3,
  m: 6e4,
  min: 6e4,
  minute: 6e4,
  h: 36e5,
  hour: 36e5,
  d: 864e5,
  day: 864e5,
};

/** `limits:`: conditions, scopes and windows (counted later by the gateway, never here). */
export function limitsStage(state: CompileState): void {
  (state.policy.limits ?? []).forEach((limit, i) => {
    const report = state.reporterFor(state.loaded.origins.limits[i]);
    state.watchFrom(state.loaded.origins.limits[i]);
    const per = (typeof limit.per === "string" ? [limit.per] : (limit.per ?? ["global"])) as LimitScope[];
    per.forEach((scope, j) => {
      if (!["agent", "session", "tool", "global"].includes(scope) && !/^args\.[^.]/.test(scope)) {
        report(
          typeof limit.per === "string" ? ["per"] : ["per", j],
          `unknown scope \`${scope}\``,
          "expected agent, session, tool, global or args.<path>",
        );
      }
    });
    let windowMs = 0;
    let max = limit.max ?? 0;
    if (limit.rate) {
      const [, count, n, unit] = /^(\d+)\s*\/\s*(\d+)?\s*([a-z]+?)s?$/.exec(limit.rate.trim()) ?? [];
      max = Number(count);
      windowMs = (Number(n) || 1) * (UNITS[unit] ?? UNITS[`${unit}s`] ?? 0);
      if (!windowMs || max < 1) report(["rate"], `bad rate \`${limit.rate}\``);
    }
    state.limits.push({
      name: limit.name,
      verdict: limit.verdict ?? "deny",
      message: limit.message,
      when: compileWhen(limit.when, ["when"], report, state.needs),
      toolMatch: toolGlobs(limit.when),
      limit: max,
      windowMs,
      per,
      describe: limit.rate ? `${limit.rate} per ${per.join("+")}` : `${max} per ${per.join("+")}`,
    } satisfies CompiledLimit);
  });
}
