import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileGlob } from "../../src/policy/index.js";
import { globMatches } from "../../src/policy/reference.js";
import { call, glob, policy, sessionPlan, TOOLS } from "./arbitraries.js";
import { propertySeed } from "../setup/property-seed.js";
import { compileGenerated, compileObject, decideBoth, sessionFor } from "./harness.js";

/** Cases per property; CI runs the default, `TW_PROPERTY_RUNS=20000` digs deeper. */
const RUNS = Number(process.env.TW_PROPERTY_RUNS ?? 2000);

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
