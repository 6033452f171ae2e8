import { describe, expect, it } from "vitest";
import type { Call } from "../core/index.js";
import { compilePolicyObject } from "../policy/index.js";
import { Warden } from "./warden.js";

/** A policy whose only rule is `when`, denying; default allow. Deny means the condition held. */
function holds(when: Record<string, unknown>, call: Call, extra: Record<string, unknown> = {}): boolean {
  const warden = new Warden(
    compilePolicyObject({
      version: 1,
      default: "allow",
      rules: [{ name: "r", when, verdict: "deny" }],
      ...extra,
    }),
  );
  const decision = warden.evaluate(call);
  if (decision.rule === "internal-error") throw new Error(decision.reason);
  return decision.verdict === "deny";
}

const call = (args: Record<string, unknown>, more: Partial<Call> = {}): Call => ({
  tool: "t",
  args,
  ...more,
});

/** [condition, call, expected] — every `when` key and operator, both polarities. */
const CASES: Array<[string, Record<string, unknown>, Call, boolean]> = [
  ["tool exact", { tool: "t" }, call({}), true],
  ["tool exact, other", { tool: "u" }, call({}), false],
  ["tool glob", { tool: "read_*" }, { tool: "read_file" }, true],
  ["tool glob, other", { tool: "read_*" }, { tool: "write_file" }, false],
  ["tool list", { tool: ["a", "t"] }, call({}), true],
  ["tool class glob", { tool: "file_[rw]" }, { tool: "file_r" }, true],
  ["tool class glob, other", { tool: "file_[rw]" }, { tool: "file_x" }, false],
  ["server glob", { server: "github*" }, call({}, { server: "github-mcp" }), true],
  ["server glob, other", { server: "github*" }, call({}, { server: "gitlab" }), false],
  ["server missing", { server: "*" }, call({}), false],
  ["agent attr", { "agent.role": "admin" }, call({}, { agent: { role: "admin" } }), true],
  ["agent attr, other", { "agent.role": "admin" }, call({}, { agent: { role: "user" } }), false],
  [
    "agent nested attr",
    { "agent.org.tier": { in: ["gold"] } },
    call({}, { agent: { org: { tier: "gold" } } }),
    true,
  ],
  ["args scalar eq", { "args.n": 5 }, call({ n: 5 }), true],
  ["args scalar eq, string vs number", { "args.n": 5 }, call({ n: "5" }), false],
  ["eq", { "args.s": { eq: "x" } }, call({ s: "x" }), true],
  ["eq, other", { "args.s": { eq: "x" } }, call({ s: "y" }), false],
  ["ne", { "args.s": { ne: "x" } }, call({ s: "y" }), true],
  ["ne, equal", { "args.s": { ne: "x" } }, call({ s: "x" }), false],
  ["ne, missing holds", { "args.s": { ne: "x" } }, call({}), true],
  ["in", { "args.s": { in: ["a", "b"] } }, call({ s: "b" }), true],
  ["in, other", { "args.s": { in: ["a", "b"] } }, call({ s: "c" }), false],
  ["not_in", { "args.s": { not_in: ["a"] } }, call({ s: "b" }), true],
  ["not_in, member", { "args.s": { not_in: ["a"] } }, call({ s: "a" }), false],
  ["contains string", { "args.s": { contains: "drop" } }, call({ s: "please drop it" }), true],
  ["contains string, absent", { "args.s": { contains: "drop" } }, call({ s: "keep" }), false],
  ["contains array", { "args.to": { contains: "ceo@x.com" } }, call({ to: ["a@x.com", "ceo@x.com"] }), true],
  ["contains array, absent", { "args.to": { contains: "ceo@x.com" } }, call({ to: ["a@x.com"] }), false],
  ["regex", { "args.s": { regex: "^[0-9]+$" } }, call({ s: "123" }), true],
  ["regex, mismatch", { "args.s": { regex: "^[0-9]+$" } }, call({ s: "12a" }), false],
  ["regex, non-string", { "args.s": { regex: "1" } }, call({ s: 1 }), false],
  ["gt", { "args.n": { gt: 100 } }, call({ n: 101 }), true],
  ["gt, equal", { "args.n": { gt: 100 } }, call({ n: 100 }), false],
  ["gt, numeric string is not a number", { "args.n": { gt: 100 } }, call({ n: "1000" }), false],
  ["gte", { "args.n": { gte: 100 } }, call({ n: 100 }), true],
  ["gte, below", { "args.n": { gte: 100 } }, call({ n: 99.99 }), false],
  ["lt", { "args.n": { lt: 0 } }, call({ n: -1 }), true],
  ["lt, equal", { "args.n": { lt: 0 } }, call({ n: 0 }), false],
  ["lte", { "args.n": { lte: 0 } }, call({ n: -0 }), true],
  ["lte, above", { "args.n": { lte: 0 } }, call({ n: 1 }), false],
  ["range conjunction", { "args.n": { gt: 1, lt: 10 } }, call({ n: 5 }), true],
  ["range conjunction, outside", { "args.n": { gt: 1, lt: 10 } }, call({ n: 10 }), false],
  ["prefix", { "args.p": { prefix: "/etc/" } }, call({ p: "/etc/passwd" }), true],
  ["prefix, other", { "args.p": { prefix: "/etc/" } }, call({ p: "/home/etc/" }), false],
  ["glob", { "args.h": { glob: "*.github.com" } }, call({ h: "api.github.com" }), true],
  ["glob, other", { "args.h": { glob: "*.github.com" } }, call({ h: "github.com.evil.io" }), false],
  ["exists true", { "args.cc": { exists: true } }, call({ cc: "x" }), true],
  ["exists true, missing", { "args.cc": { exists: true } }, call({}), false],
  ["exists false", { "args.cc": { exists: false } }, call({}), true],
  ["exists false, present", { "args.cc": { exists: false } }, call({ cc: null }), false],
  ["nested path", { "args.a.b.c": 1 }, call({ a: { b: { c: 1 } } }), true],
  ["nested path, missing middle", { "args.a.b.c": 1 }, call({ a: {} }), false],
  ["array index path", { "args.to.0": "x" }, call({ to: ["x", "y"] }), true],
  [
    "any element of an array",
    { "args.items.sku": "bad" },
    call({ items: [{ sku: "ok" }, { sku: "bad" }] }),
    true,
  ],
  ["any element of an array, none", { "args.items.sku": "bad" }, call({ items: [{ sku: "ok" }] }), false],
  [
    "__proto__ never resolves to the prototype",
    { "args.__proto__.polluted": true },
    call(JSON.parse('{"x":1}')),
    false,
  ],
  ["constructor is not an own property", { "args.constructor": { exists: true } }, call({}), false],
  [
    "own __proto__ key from JSON is data",
    { "args.__proto__.a": 1 },
    call(JSON.parse('{"__proto__":{"a":1}}')),
    true,
  ],
  ["any", { any: [{ tool: "x" }, { "args.n": 1 }] }, call({ n: 1 }), true],
  ["any, none", { any: [{ tool: "x" }, { "args.n": 1 }] }, call({ n: 2 }), false],
  ["all", { all: [{ tool: "t" }, { "args.n": 1 }] }, call({ n: 1 }), true],
  ["all, one fails", { all: [{ tool: "t" }, { "args.n": 1 }] }, call({ n: 2 }), false],
  ["not", { not: { tool: "t" } }, call({}), false],
  ["not, other", { not: { tool: "u" } }, call({}), true],
  ["conjunction of keys", { tool: "t", "args.n": { gt: 1 } }, call({ n: 2 }), true],
  ["conjunction of keys, one fails", { tool: "t", "args.n": { gt: 1 } }, call({ n: 0 }), false],
  [
    "expr (CEL)",
    { expr: "args.amount > 100 && agent.role != 'admin'" },
    call({ amount: 150 }, { agent: { role: "dev" } }),
    true,
  ],
  [
    "expr (CEL), false",
    { expr: "args.amount > 100 && agent.role != 'admin'" },
    call({ amount: 150 }, { agent: { role: "admin" } }),
    false,
  ],
  ["expr sees tool", { expr: "tool.startsWith('t')" }, call({}), true],
  ["expr with has()", { expr: "has(args.cc)" }, call({}), false],
  ["findings", { findings: ["enum.*"] }, { tool: "e", args: { mode: "z" } }, true],
  ["findings, none", { findings: ["enum.*"] }, { tool: "e", args: { mode: "a" } }, false],
];

describe("conditions", () => {
  it.each(CASES)("%s", (_name, when, input, expected) => {
    const extra = { tools: { e: { args: { mode: { enum: ["a", "b"] } }, on_violation: "flag" } } };
    expect(holds(when, input, extra)).toBe(expected);
  });

  const declared = { tools: { mail: { sink: "external", risk: "high" }, notes: { risk: "low" } } };
  it.each([
    ["sink", { sink: "external" }, "mail", true],
    ["sink, other tool", { sink: "external" }, "notes", false],
    ["risk level", { risk: "high" }, "mail", true],
    ["risk level, other", { risk: "high" }, "notes", false],
    ["risk gte", { risk: { gte: "moderate" } }, "mail", true],
    ["risk gte, lower", { risk: { gte: "moderate" } }, "notes", false],
    ["risk lt", { risk: { lt: "moderate" } }, "notes", true],
    ["risk of an undeclared tool never matches", { risk: { lt: "critical" } }, "other", false],
  ] as const)("%s", (_name, when, tool, expected) => {
    expect(holds(when as Record<string, unknown>, { tool, args: {} }, declared)).toBe(expected);
  });
});

describe("combining verdicts", () => {
  const policy = (extra: Record<string, unknown>) =>
    new Warden(compilePolicyObject({ version: 1, ...extra }));

  it("most severe wins: deny > ask > flag > allow", () => {
    const w = policy({
      allow: ["t"],
      flag: ["t"],
      rules: [
        { name: "asks", when: { tool: "t" }, verdict: "ask" },
        { name: "denies", when: { "args.x": 1 }, verdict: "deny" },
      ],
    });
    expect(w.evaluate({ tool: "t", args: {} })).toMatchObject({
      verdict: "ask",
      rule: "asks",
      matched: ["asks", "flag:t", "allow:t"],
    });
    expect(w.evaluate({ tool: "t", args: { x: 1 } })).toMatchObject({ verdict: "deny", rule: "denies" });
  });

  it("default applies only when nothing matched", () => {
    const w = policy({ default: "ask", flag: ["f"] });
    expect(w.evaluate({ tool: "other" })).toMatchObject({ verdict: "ask", rule: null });
    expect(w.evaluate({ tool: "f" })).toMatchObject({ verdict: "flag", rule: "flag:f" });
    expect(policy({}).evaluate({ tool: "x" }).verdict).toBe("deny");
  });

  it("rule order never changes the decision or the rule named", () => {
    const rules = [
      { name: "b-rule", when: { tool: "t" }, verdict: "deny" },
      { name: "a-rule", when: { tool: "t" }, verdict: "deny" },
      { name: "c-rule", when: { tool: "t" }, verdict: "ask" },
    ];
    const forward = policy({ rules }).evaluate({ tool: "t" });
    const backward = policy({ rules: [...rules].reverse() }).evaluate({ tool: "t" });
    expect(forward).toEqual(backward);
    expect(forward.rule).toBe("a-rule");
  });

  it("a failed constraint denies, or asks with on_violation: ask, and names the finding", () => {
    const w = policy({
      allow: ["*"],
      tools: {
        strict: { args: { n: { range: { max: 10 } } } },
        lenient: { args: { n: { range: { max: 10 } } }, on_violation: "ask" },
      },
    });
    expect(w.evaluate({ tool: "strict", args: { n: 11 } })).toMatchObject({
      verdict: "deny",
      rule: "range.outside",
      findings: [{ code: "range.outside", arg: "n", verdict: "deny" }],
    });
    expect(w.evaluate({ tool: "lenient", args: { n: 11 } })).toMatchObject({
      verdict: "ask",
      rule: "range.outside",
    });
    expect(w.evaluate({ tool: "strict", args: { n: 10 } })).toMatchObject({ verdict: "allow", findings: [] });
  });

  it("basic kinds: enum, regex, max_length, range", () => {
    const w = policy({
      allow: ["*"],
      tools: {
        t: {
          args: {
            mode: { enum: ["r", "w"] },
            id: { regex: "^[a-z]{3}$" },
            note: { max_length: 5 },
            n: { range: { min: 0, max: 1, integer: true } },
          },
        },
      },
    });
    const codes = (args: Record<string, unknown>) =>
      w.evaluate({ tool: "t", args }).findings.map((f) => f.code);
    expect(codes({ mode: "r", id: "abc", note: "hi", n: 1 })).toEqual([]);
    expect(codes({ mode: "x", id: "abcd", note: "toolong", n: 0.5 })).toEqual([
      "enum.not_allowed",
      "regex.mismatch",
      "max_length.exceeded",
      "range.not_integer",
    ]);
    expect(codes({ n: Number.NaN })).toEqual(["range.type"]);
    expect(codes({ n: Number.POSITIVE_INFINITY })).toEqual(["range.type"]);
  });
});

describe("malformed calls and internal errors", () => {
  const w = new Warden(compilePolicyObject({ version: 1, default: "allow" }));
  it.each([
    ["no tool", {}, "`tool` must be a non-empty string"],
    ["args not an object", { tool: "t", args: [1] }, "`args` must be an object"],
    [
      "cyclic args",
      {
        tool: "t",
        args: (() => {
          const a: Record<string, unknown> = {};
          a.self = a;
          return a;
        })(),
      },
      "nested deeper",
    ],
    ["BigInt", { tool: "t", args: { n: 1n } }, "BigInt"],
    ["function", { tool: "t", args: { f: () => 1 } }, "function"],
    ["class instance", { tool: "t", args: { d: new Date() } }, "`Date` object"],
    ["negative cost", { tool: "t", cost: -1 }, "`cost`"],
  ])("%s is denied with a reason", (_name, input, reason) => {
    const decision = w.evaluate(input as Call);
    expect(decision.verdict).toBe("deny");
    expect(decision.rule).toBe("malformed-call");
    expect(decision.reason).toContain(reason);
  });

  it("a CEL runtime error denies under fail: closed and flags under fail: open", () => {
    const rules = [{ name: "needs-role", when: { expr: "agent.role == 'x'" }, verdict: "allow" }];
    const closed = new Warden(compilePolicyObject({ version: 1, default: "allow", rules }));
    const open = new Warden(compilePolicyObject({ version: 1, default: "allow", fail: "open", rules }));
    expect(closed.evaluate({ tool: "t", agent: {} })).toMatchObject({
      verdict: "deny",
      rule: "internal-error",
    });
    expect(open.evaluate({ tool: "t", agent: {} })).toMatchObject({
      verdict: "flag",
      rule: "internal-error",
    });
  });
});
