import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PolicyLoadError } from "../../src/core/index.js";
import { compilePolicyObject } from "../../src/policy/index.js";
import { referenceDecide } from "../../src/policy/reference.js";
import { OPERATORS, WHEN_KEYS, whenKeyOf } from "../../src/policy/vocabulary.js";
import type { Operator, WhenKey } from "../../src/policy/vocabulary.js";
import { when } from "./arbitraries.js";

/** One valid use of every `when` key (a record: a key added to the vocabulary must get one). */
const KEY_SAMPLES: Record<WhenKey, [string, unknown]> = {
  tool: ["tool", "t"],
  server: ["server", "s"],
  risk: ["risk", { gte: "low" }],
  sink: ["sink", "external"],
  flows: ["flows", ["untrusted"]],
  seen: ["seen", ["untrusted"]],
  findings: ["findings", "url.*"],
  expr: ["expr", "tool == 't'"],
  user_asked: ["user_asked", ["refund"]],
  any: ["any", [{ tool: "t" }]],
  all: ["all", [{ tool: "t" }]],
  not: ["not", { tool: "u" }],
  "args.": ["args.a", "x"],
  "agent.": ["agent.role", "admin"],
};

/** One valid operand of every operator, tested on `args.a`. */
const OPERANDS: Record<Operator, unknown> = {
  eq: "x",
  ne: "y",
  in: ["x"],
  not_in: ["y"],
  contains: "x",
  regex: "^x",
  gt: 1,
  gte: 1,
  lt: 1,
  lte: 1,
  prefix: "x",
  glob: "x*",
  exists: true,
  flows: ["untrusted"],
  from: ["lookup"],
};

const session = { seen: [], flows: [], endorsed: () => false, fromValues: () => false, inputs: [] };

/** Compiles a one-rule policy with `when`, and asks the reference evaluator about one call. */
function bothAccept(whenMap: Record<string, unknown>): void {
  const compiled = compilePolicyObject({
    version: 1,
    rules: [{ name: "r", when: whenMap, verdict: "deny" }],
  });
  referenceDecide(compiled.loaded.policy, { tool: "t", args: { a: "x" } }, session);
}

function issuesOf(whenMap: Record<string, unknown>): string[] {
  try {
    bothAccept(whenMap);
    return [];
  } catch (error) {
    if (error instanceof PolicyLoadError)
      return error.issues.map((issue) => `${issue.message} | ${issue.help}`);
    throw error;
  }
}

/** The vocabulary words a generated `when` uses, nested ones included. */
function wordsOf(value: unknown, keys: Set<string>, ops: Set<string>): void {
  if (Array.isArray(value)) for (const item of value) wordsOf(item, keys, ops);
  if (value === null || typeof value !== "object" || Array.isArray(value)) return;
  for (const [key, spec] of Object.entries(value)) {
    const word = whenKeyOf(key);
    if (!word) continue;
    keys.add(word);
    if (word === "args." || word === "agent.") {
      if (spec !== null && typeof spec === "object" && !Array.isArray(spec))
        for (const op of Object.keys(spec)) ops.add(op);
    } else if (word === "any" || word === "all" || word === "not") wordsOf(spec, keys, ops);
  }
}

describe("the `when` vocabulary (policy/vocabulary.ts)", () => {
  it("every key compiles and the reference evaluator reads it", () => {
    for (const [key, spec] of Object.values(KEY_SAMPLES)) expect(issuesOf({ [key]: spec }), key).toEqual([]);
  });

  it("every operator compiles and the reference evaluator reads it", () => {
    for (const [op, operand] of Object.entries(OPERANDS))
      expect(issuesOf({ "args.a": { [op]: operand } }), op).toEqual([]);
  });

  it("the compiler knows exactly the vocabulary's keys and operators", () => {
    expect(issuesOf({ zzzzzzzz: 1 })).toEqual([
      `unknown condition \`zzzzzzzz\` | conditions: ${WHEN_KEYS.join(", ")}`,
    ]);
    expect(issuesOf({ "args.a": { zzzzzzzz: 1 } })).toEqual([
      `unknown operator \`zzzzzzzz\` | operators: ${OPERATORS.join(", ")}`,
    ]);
  });

  it("the property-test generators draw every key and operator from it", () => {
    const keys = new Set<string>();
    const ops = new Set<string>();
    for (const generated of fc.sample(when(), { seed: 15, numRuns: 3000 })) wordsOf(generated, keys, ops);
    expect([...keys].sort()).toEqual([...WHEN_KEYS].sort());
    expect([...ops].sort()).toEqual([...OPERATORS].sort());
  });
});
