import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import type { Call, Decision, Finding } from "../../src/core/index.js";
import { SEVERITY } from "../../src/core/index.js";
import { evaluateCall } from "../../src/gateway/index.js";
import type { Session } from "../../src/gateway/index.js";
import { compilePolicyFile } from "../../src/policy/index.js";
import type { CompiledPolicy, CompiledRule, CompiledTool } from "../../src/policy/index.js";
import type { GenPolicy, When } from "./arbitraries.js";
import {
  call,
  permute,
  policy,
  policyText,
  rule,
  SAFE_EXPRESSIONS,
  sessionPlan,
  VERDICTS,
} from "./arbitraries.js";
import { compileObject, referenceFor, sessionFor, summarize } from "./harness.js";

const RUNS = Number(process.env.TW_PROPERTY_RUNS ?? 2000);
const calls = fc.array(call, { minLength: 1, maxLength: 2 });

function load(p: GenPolicy): CompiledPolicy {
  const compiled = compileObject(p);
  if (!compiled) expect.fail(`a generated policy did not compile:\n${policyText(p)}`);
  return compiled;
}

function decide(policy: CompiledPolicy, c: Call, session: Session | undefined): Decision {
  return evaluateCall(policy, c, session);
}

/** The same policy with every list and map in another order: rules, shorthand globs, `when` keys (nested), tools, constraints. */
function reorder(p: GenPolicy, seed: number): GenPolicy {
  let n = seed;
  const next = () => (n = (Math.imul(n, 48271) + 1) >>> 0);
  const whenOrder = (when: When): When =>
    Object.fromEntries(
      permute(Object.entries(when), next()).map(([key, spec]) => {
        if (key === "not") return [key, whenOrder(spec as When)];
        if (key === "any" || key === "all") return [key, permute((spec as When[]).map(whenOrder), next())];
        return [key, spec];
      }),
    );
  const out: GenPolicy = {
    ...p,
    rules: permute(p.rules ?? [], next()).map((r) => ({ ...r, when: r.when && whenOrder(r.when) })),
  };
  for (const verdict of VERDICTS)
    if (Array.isArray(p[verdict])) out[verdict] = permute(p[verdict] as string[], next());
  if (p.tools) {
    out.tools = Object.fromEntries(
      permute(Object.entries(p.tools as Record<string, Record<string, unknown>>), next()).map(
        ([name, decl]) => [
          name,
          decl.args
            ? {
                ...decl,
                args: Object.fromEntries(
                  permute(Object.entries(decl.args as Record<string, Record<string, unknown>>), next()).map(
                    ([arg, kinds]) => [arg, Object.fromEntries(permute(Object.entries(kinds), next()))],
                  ),
                ),
              }
            : decl,
        ],
      ),
    );
  }
  return out;
}

const dir = mkdtempSync(join(tmpdir(), "tw-laws-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Writes `p` as two files, `root.json` extending `base.json`, with the rules and shorthand globs split between them at `cut`. */
function splitAcrossFiles(p: GenPolicy, cut: number): CompiledPolicy {
  const base: GenPolicy = { version: 1, rules: [] };
  const root: GenPolicy = { ...p, extends: "./base.yaml", rules: [] };
  for (const [i, r] of (p.rules ?? []).entries()) (i < cut ? base : root).rules!.push(r);
  for (const verdict of VERDICTS) {
    const globs = (p[verdict] as string[] | undefined) ?? [];
    base[verdict] = globs.slice(0, cut);
    root[verdict] = globs.slice(cut);
  }
  writeFileSync(join(dir, "base.yaml"), policyText(base));
  writeFileSync(join(dir, "root.yaml"), policyText(root));
  return compilePolicyFile(join(dir, "root.yaml"));
}

// Thousands of generated policies per law: give a loaded machine time (alone, each takes seconds).
describe("laws of the semantics", { timeout: 180_000 }, () => {
  it(`order in the file, and the order of files, never changes a decision (${RUNS} cases)`, () => {
    fc.assert(
      fc.property(policy(), calls, sessionPlan, fc.nat(), fc.nat(6), (p, cs, plan, seed, cut) => {
        const original = load(p);
        const reordered = reorder(p, seed);
        // One case in four goes through the real loader, split across two files (file order).
        const other = seed % 4 === 0 ? splitAcrossFiles(reordered, cut) : load(reordered);
        const session = sessionFor(plan, original);
        for (const c of cs) {
          const a = summarize(decide(original, c, session));
          const b = summarize(decide(other, c, session));
          if (!isDeepStrictEqual(a, b)) expect({ call: c, decision: b }).toEqual({ call: c, decision: a });
        }
      }),
      { numRuns: RUNS },
    );
  });

  it(`adding a deny rule never makes a decision less severe, and denies when it matches (${RUNS} cases)`, () => {
    const added = rule(SAFE_EXPRESSIONS).map((r) => ({ ...r, name: "zz-added", verdict: "deny" }));
    fc.assert(
      fc.property(policy(), added, calls, sessionPlan, (p, extra, cs, plan) => {
        const before = load(p);
        const after = load({ ...p, rules: [...(p.rules ?? []), extra] });
        const session = sessionFor(plan, before);
        for (const c of cs) {
          const was = decide(before, c, session);
          const now = decide(after, c, session);
          expect(SEVERITY[now.verdict], `${was.verdict} -> ${now.verdict}`).toBeGreaterThanOrEqual(
            SEVERITY[was.verdict],
          );
          if (summarize(now).matched.includes("zz-added")) expect(now.verdict).toBe("deny");
        }
      }),
      { numRuns: RUNS },
    );
  });

  it(`\`default\` applies exactly when nothing matched (${RUNS} cases)`, () => {
    fc.assert(
      fc.property(policy(), fc.constantFrom(...VERDICTS), calls, sessionPlan, (p, otherDefault, cs, plan) => {
        const one = load(p);
        const two = load({ ...p, default: otherDefault });
        const session = sessionFor(plan, one);
        for (const c of cs) {
          const a = decide(one, c, session);
          const b = decide(two, c, session);
          const nothingMatched = referenceFor(one, c, session).matched.length === 0;
          expect(a.rule === null).toBe(nothingMatched);
          if (nothingMatched) {
            expect([a.verdict, b.verdict, b.rule]).toEqual([
              (p.default as string | undefined) ?? "deny",
              otherDefault,
              null,
            ]);
          } else {
            expect(summarize(b)).toEqual(summarize(a));
          }
        }
      }),
      { numRuns: RUNS },
    );
  });

  it(`an internal error denies under \`fail: closed\` and flags under \`fail: open\` (${RUNS} cases)`, () => {
    const boom = () => {
      throw new Error("injected");
    };
    fc.assert(
      fc.property(
        policy(),
        call,
        sessionPlan,
        fc.constantFrom("cel", "when", "constraint", "detector"),
        (p, c0, plan, how) => {
          let c = c0;
          let compiled: CompiledPolicy;
          if (how === "cel") {
            // Fails at run time on every call: the key is never in the arguments.
            compiled = load({
              ...p,
              rules: [
                ...(p.rules ?? []),
                { name: "zz-boom", verdict: "allow", when: { expr: "args.__never__ == 1" } },
              ],
            });
          } else {
            compiled = { ...load(p) };
            const args = { ...(typeof c.args === "object" && c.args !== null ? c.args : {}), injected: "x" };
            if (how === "when") {
              const rulesFor = compiled.rulesFor;
              const throwing: CompiledRule = { name: "zz-boom", verdict: "allow", reason: "", when: boom };
              compiled.rulesFor = (tool) => ({
                ...rulesFor(tool),
                always: [...rulesFor(tool).always, throwing],
              });
            } else if (how === "constraint") {
              const decl: CompiledTool =
                compiled.tools.get(c.tool) ??
                ({
                  name: c.tool,
                  produces: [],
                  onViolation: "deny",
                  checks: [],
                  asyncChecks: [],
                  detectors: [],
                } as unknown as CompiledTool);
              const tools = new Map(compiled.tools);
              tools.set(c.tool, {
                ...decl,
                checks: [...decl.checks, { arg: "injected", path: ["injected"], kind: "boom", check: boom }],
              });
              compiled.tools = tools;
              c = { ...c, args };
            } else {
              const use = {
                detector: {
                  name: "boom",
                  summary: "",
                  scan: (_: string, __: string, ___: Finding[]) => boom(),
                },
                verdict: "deny" as const,
              };
              compiled.detectors = [...compiled.detectors, use];
              compiled.tools = new Map(
                [...compiled.tools].map(([name, t]) => [name, { ...t, detectors: [...t.detectors, use] }]),
              );
              c = { ...c, args };
            }
          }
          const session = sessionFor(plan, compiled);
          const decision = decide(compiled, c, session);
          if (decision.rule === "malformed-call") {
            expect(referenceFor(compiled, c, session).rule).toBe("malformed-call");
            return;
          }
          expect([decision.verdict, decision.rule]).toEqual([
            compiled.failOpen ? "flag" : "deny",
            "internal-error",
          ]);
        },
      ),
      { numRuns: RUNS },
    );
  });
});
