import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileGlob } from "../../src/policy/index.js";
import { globMatches } from "../../src/policy/reference.js";
import { call, glob, policy, sessionPlan, TOOLS } from "./arbitraries.js";
import { propertySeed } from "../setup/property-seed.js";
import { Warden } from "../../src/gateway/index.js";
import type { Call } from "../../src/core/index.js";
import type { GenPolicy } from "./arbitraries.js";
import {
  compileGenerated,
  compileObject,
  DecideModel,
  decideBoth,
  sessionFor,
  summarize,
  type StatePlan,
} from "./harness.js";

/** Cases per property; CI runs the default, `TW_PROPERTY_RUNS=20000` digs deeper. */
const RUNS = Number(process.env.TW_PROPERTY_RUNS ?? 2000);

/** Tools the limits and costs name, so that calls meet them often. */
const COUNTED = ["t", "refund", "send_email", "read_file"] as const;

const statePlan: fc.Arbitrary<StatePlan> = fc.record({
  limits: fc.uniqueArray(
    fc.record(
      {
        // Names around the generated rule names (`a`, `B`, `r1`, `z`): ties are broken by name.
        name: fc.constantFrom("a-lim", "m-lim", "zz-lim"),
        tool: fc.constantFrom("*", "re*", ...COUNTED),
        max: fc.integer({ min: 1, max: 2 }),
        per: fc.constantFrom("session", "agent", "tool", "global"),
        verdict: fc.constantFrom("deny", "ask", "flag"),
      },
      { requiredKeys: ["name", "tool", "max", "per"] },
    ),
    { selector: (limit) => limit.name, maxLength: 2 },
  ),
  costs: fc
    .array(fc.tuple(fc.constantFrom(...COUNTED), fc.constantFrom(0, 1, 2.5, 4)), { maxLength: 3 })
    .map((entries) => Object.fromEntries(entries)),
  budget: fc.option(
    fc.record(
      {
        max: fc.constantFrom(0, 3, 5),
        ask_above: fc.constantFrom(1, 3),
        per: fc.constantFrom("session", "agent", "global"),
      },
      { requiredKeys: ["max", "per"] },
    ),
    { nil: undefined },
  ),
});

/** The generated policy with the plan's limits, costs and budget; without `url` checks, whose DNS half decide would run. */
function withState(p: GenPolicy, plan: StatePlan): GenPolicy {
  const tools: Record<string, Record<string, unknown>> = {};
  for (const [name, decl] of Object.entries((p.tools ?? {}) as Record<string, Record<string, unknown>>)) {
    const args: Record<string, Record<string, unknown>> = {};
    for (const [arg, kinds] of Object.entries((decl.args ?? {}) as Record<string, Record<string, unknown>>)) {
      const { url: _url, ...rest } = kinds;
      if (Object.keys(rest).length) args[arg] = rest;
    }
    tools[name] = { ...decl, args };
  }
  for (const [name, cost] of Object.entries(plan.costs)) tools[name] = { ...tools[name], cost };
  return {
    ...p,
    tools,
    limits: plan.limits.map(({ tool, ...limit }) => ({ ...limit, when: { tool } })),
    ...(plan.budget ? { budget: plan.budget } : {}),
  };
}

// Thousands of generated policies per property: give a loaded machine time.
describe("the compiled engine agrees with the reference evaluator", { timeout: 180_000 }, () => {
  it(`on verdict, deciding rule, matched set, finding codes and labels (${RUNS} policies, 1-4 calls each)`, () => {
    const seen = { cases: 0, calls: 0, byOutcome: new Map<string, number>() };
    fc.assert(
      fc.property(
        policy(),
        fc.array(call, { minLength: 1, maxLength: 4 }),
        sessionPlan,
        fc.nat(3),
        (p, calls, plan, path) => {
          // One case in four through the real loader (text); the rest skip the YAML parse, which
          // is most of a case's time. The reference reads the loader's validated policy either way.
          const compiled = path === 0 ? compileGenerated(p) : compileObject(p);
          if (!compiled) expect.fail("a generated policy did not load");
          const session = sessionFor(plan, compiled!);
          seen.cases++;
          for (const c of calls) {
            const { engine, reference } = decideBoth(compiled!, c, session);
            if (!isDeepStrictEqual(engine, reference))
              expect({ call: c, engine }).toEqual({ call: c, engine: reference });
            seen.calls++;
            const outcome =
              engine.rule === null
                ? "default"
                : engine.rule.endsWith("-call") || engine.rule === "internal-error"
                  ? engine.rule
                  : engine.verdict;
            seen.byOutcome.set(outcome, (seen.byOutcome.get(outcome) ?? 0) + 1);
          }
        },
      ),
      { numRuns: RUNS },
    );
    expect(seen.cases).toBe(RUNS);
    // The generator reaches every outcome, so agreement is not agreement on trivial cases.
    for (const outcome of ["allow", "flag", "ask", "deny", "default", "malformed-call", "internal-error"]) {
      expect(
        seen.byOutcome.get(outcome) ?? 0,
        `${outcome} (TW_PROPERTY_SEED=${propertySeed})`,
      ).toBeGreaterThan(RUNS / 500);
    }
  });

  it(`through decide: limits, costs, the budget and approvals over a sequence of calls (${RUNS / 8} policies, 2-8 calls each)`, async () => {
    const seen = new Map<string, number>();
    const countedCall = fc
      .tuple(call, fc.constantFrom(...COUNTED))
      .map(([c, tool]) => ({ ...c, tool }) as Call);
    await fc.assert(
      fc.asyncProperty(
        policy(),
        statePlan,
        fc.array(
          fc.tuple(
            fc.oneof({ arbitrary: countedCall, weight: 3 }, { arbitrary: call, weight: 1 }),
            fc.boolean(),
          ),
          { minLength: 2, maxLength: 8 },
        ),
        async (p, plan, calls) => {
          const doc = withState(p, plan);
          const compiled = compileObject(doc);
          if (!compiled) expect.fail("a generated policy did not load");
          const warden = Warden.fromObject(doc, { now: () => 1_700_000_000_000 });
          const model = new DecideModel(compiled!, plan);
          const check = async (c: Call, approved?: string) => {
            const decision = await warden.decide(c);
            const engine = summarize(decision);
            const reference = model.decide(c, approved);
            if (!isDeepStrictEqual(engine, reference))
              expect({ call: c, plan, approved, engine }).toEqual({
                call: c,
                plan,
                approved,
                engine: reference,
              });
            const by = reference.rule?.endsWith("-lim")
              ? "limit"
              : reference.rule?.startsWith("approval:")
                ? "approval"
                : reference.rule;
            if (by) seen.set(by, (seen.get(by) ?? 0) + 1);
            return decision;
          };
          for (const [c, approve] of calls) {
            const decision = await check(c);
            // An approver approves the ask; the same call again is let through once, then counted.
            if (approve && decision.verdict === "ask" && decision.approval) {
              await warden.approvals.settle(decision.approval, "approved", "bob");
              await check(c, decision.approval);
            }
          }
        },
      ),
      { numRuns: RUNS / 8 },
    );
    // Limits, the budget, its approval threshold and approvals each decide often enough to be tested.
    for (const outcome of ["limit", "budget", "budget.ask_above", "approval"])
      expect(seen.get(outcome) ?? 0, `${outcome} (TW_PROPERTY_SEED=${propertySeed})`).toBeGreaterThan(
        RUNS / 500,
      );
  });

  it(`on \`from\` against the session's trusted values (${RUNS} cases)`, () => {
    const pool = [
      "abc",
      "admin",
      "bob@corp.example",
      5,
      100,
      "Bob <bob@corp.example>",
      ["abc", 5],
      [],
      { e: "abc" },
    ];
    const value = fc.constantFrom(...pool, "other", 6, ["abc", "other"]);
    let trusted = 0;
    fc.assert(
      fc.property(
        fc.constantFrom(["lookup"], ["u"], ["lookup", "u"], ["none"]),
        fc.constantFrom("a", "a.b", "items.a"),
        fc.array(fc.constantFrom(...pool), { maxLength: 3 }),
        fc.array(fc.constantFrom("abc", "bob@corp.example", "the user said admin"), { maxLength: 2 }),
        fc.array(
          fc.tuple(
            fc.constantFrom("a", "items", "b"),
            fc.oneof(value, fc.array(fc.record({ a: value }), { maxLength: 2 })),
          ),
          { maxLength: 2 },
        ),
        (from, path, values, inputs, entries) => {
          const compiled = compileObject({
            version: 1,
            default: "allow",
            rules: [{ name: "r", when: { [`args.${path}`]: { from } }, verdict: "deny" }],
          })!;
          const session = sessionFor(
            { outputs: [], inputs: inputs.map((text) => ({ text, labels: ["u"] })), values },
            compiled,
          );
          const c = { tool: "t", args: Object.fromEntries(entries) };
          const { engine, reference } = decideBoth(compiled, c, session);
          if (!isDeepStrictEqual(engine, reference))
            expect({ call: c, engine }).toEqual({ call: c, engine: reference });
          if (engine.rule === "r") trusted++;
        },
      ),
      { numRuns: RUNS },
    );
    expect(trusted, `TW_PROPERTY_SEED=${propertySeed}`).toBeGreaterThan(RUNS / 50);
  });

  it(`on glob matching, written independently of the engine's RE2 translation (${RUNS * 5} cases)`, () => {
    const text = fc.oneof(
      fc.constantFrom(...TOOLS, "", "ab", "tx", "[ab]", "a*b", "\\", "a😀", "é"),
      fc.string({ unit: "binary", maxLength: 6 }),
    );
    fc.assert(
      fc.property(glob, fc.array(text, { minLength: 1, maxLength: 5 }), (g, texts) => {
        let engine: (text: string) => boolean;
        try {
          engine = compileGlob(g);
        } catch {
          return; // a glob the engine refuses never reaches a decision
        }
        for (const t of texts)
          if (engine(t) !== globMatches(g, t)) expect([g, t, engine(t)]).toEqual([g, t, !engine(t)]);
      }),
      { numRuns: RUNS },
    );
  });
});
