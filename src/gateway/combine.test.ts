import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SEVERITY, VERDICTS } from "../core/index.js";
import type { Decision } from "../core/index.js";
import { contribute, contributionsOf, overrule, rankInto } from "./combine.js";
import type { Contribution } from "./combine.js";
import { Warden } from "./warden.js";

/** `matched` is "most severe first": each name's verdict, looked up in the policy's rules and limits. */
function severities(decision: Decision, verdictOf: Record<string, string>): number[] {
  return (decision.matched ?? []).map((name) => SEVERITY[verdictOf[name] as keyof typeof SEVERITY]);
}

const rankedPolicy = {
  version: 1,
  default: "deny",
  tools: { pay: { cost: 2 }, mail: { cost: 3 } },
  rules: [
    { name: "zz-flag", when: { tool: "*" }, verdict: "flag" },
    { name: "a-allow", when: { tool: "*" }, verdict: "allow" },
  ],
  limits: [{ name: "one", when: { tool: "search" }, max: 1, per: "session" }],
  budget: { max: 4, per: "session" },
};

describe("the gateway's contributions keep `matched` most severe first", () => {
  it("a call denied by a limit names the limit first (was appended last)", async () => {
    const warden = Warden.fromObject(rankedPolicy);
    const call = { tool: "search", session: "s", args: {} };
    expect((await warden.decide(call)).matched).toEqual(["zz-flag", "a-allow"]);
    const denied = await warden.decide(call);
    expect(denied).toMatchObject({ verdict: "deny", rule: "one" });
    expect(denied.matched).toEqual(["one", "zz-flag", "a-allow"]);
  });

  it("a call denied by the budget names the budget first", async () => {
    const warden = Warden.fromObject(rankedPolicy);
    expect((await warden.decide({ tool: "pay", session: "s", args: {} })).verdict).toBe("flag");
    const denied = await warden.decide({ tool: "mail", session: "s", args: {} });
    expect(denied).toMatchObject({ verdict: "deny", rule: "budget" });
    expect(denied.matched).toEqual(["budget", "zz-flag", "a-allow"]);
  });

  it("a plan's finding ranks among the other denials by name, not appended", async () => {
    const warden = Warden.fromObject({
      version: 1,
      allow: ["read"],
      rules: [{ name: "zz-deny", when: { tool: "write" }, verdict: "deny" }],
    });
    const plan = warden.plan([{ tool: "read" }], { session: "p" });
    const decision = await warden.decide({ tool: "write", session: "p", args: {} });
    expect(decision.verdict).toBe("deny");
    expect(decision.matched?.[0]).toBe(decision.rule);
    expect([...(decision.matched ?? [])].sort()).toEqual([...(decision.matched ?? [])]);
    warden.endPlan(plan);
  });

  it(`for any mix of rules and a tripped limit, \`matched\` is ordered by severity and starts with \`rule\``, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom(...VERDICTS), { minLength: 1, maxLength: 5 }),
        fc.constantFrom("deny", "ask", "flag"),
        async (verdicts, limitVerdict) => {
          const rules = verdicts.map((verdict, i) => ({
            name: `r${(7 * i) % 5}${i}`,
            when: { tool: "t" },
            verdict,
          }));
          const warden = Warden.fromObject({
            version: 1,
            rules,
            limits: [{ name: "lim", when: { tool: "t" }, max: 1, per: "global", verdict: limitVerdict }],
          });
          await warden.decide({ tool: "t", args: {} });
          const decision = await warden.decide({ tool: "t", args: {} });
          const verdictOf: Record<string, string> = { lim: limitVerdict };
          for (const rule of rules) verdictOf[rule.name] = rule.verdict;
          const ranks = severities(decision, verdictOf);
          expect(ranks).toEqual([...ranks].sort((a, b) => b - a));
          expect(decision.matched?.[0] ?? decision.rule).toBe(decision.rule);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("combine", () => {
  const contribution = fc.record({
    verdict: fc.constantFrom(...VERDICTS),
    rule: fc.constantFrom("a", "b", "c", "limit", "budget", "plan.outside"),
    reason: fc.constant("r"),
    judge: fc.boolean(),
  });
  const empty: Decision = { verdict: "deny", rule: null, reason: "default", findings: [], labels: [] };

  it("adding contributions one at a time, in any order, gives the same decision as ranking them at once", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(contribution, { minLength: 1, maxLength: 6, selector: (c) => c.rule }),
        (list) => {
          const batch = rankInto(empty, list);
          let stepwise = empty;
          for (const c of [...list].reverse()) stepwise = contribute(stepwise, c);
          expect(stepwise).toEqual(batch);
          expect(batch.matched ?? [batch.rule]).toEqual(contributionsOf(batch).map((c) => c.rule));
        },
      ),
    );
  });

  it("an overruling answer decides; what comes after still ranks against it", () => {
    const asked = rankInto(empty, [
      { verdict: "ask", rule: "big", reason: "big" },
      { verdict: "flag", rule: "note", reason: "note" },
    ]);
    const approved = overrule(asked, { verdict: "allow", rule: "approval:1", reason: "ok" });
    expect(approved).toMatchObject({
      verdict: "allow",
      rule: "approval:1",
      matched: ["approval:1", "big", "note"],
    });
    const limited: Contribution = { verdict: "deny", rule: "rate", reason: "full" };
    expect(contribute(approved, limited)).toMatchObject({
      verdict: "deny",
      rule: "rate",
      matched: ["rate", "approval:1", "big", "note"],
    });
  });
});
