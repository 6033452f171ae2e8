import { describe, expect, it } from "vitest";
import type { Call } from "../core/index.js";
import { loadPolicyObject, loadPolicyText } from "./load.js";
import { globMatches, referenceDecide, valuesAt } from "./reference.js";
import type { ReferenceSession } from "./reference.js";

/**
 * The reference evaluator read against the documented semantics, on its own: if it drifted from
 * the README's "Policy reference", the differential tests (test/properties) would only prove that the
 * engine drifted the same way.
 */
function holds(
  when: Record<string, unknown>,
  call: Call,
  session: ReferenceSession = {},
  extra: Record<string, unknown> = {},
): boolean {
  const { policy } = loadPolicyObject({
    version: 1,
    default: "allow",
    rules: [{ name: "r", when, verdict: "deny" }],
    ...extra,
  });
  const decision = referenceDecide(policy, call, session);
  if (decision.rule === "internal-error") throw new Error(decision.reason);
  return decision.rule === "r";
}

const call = (args: Record<string, unknown>, more: Partial<Call> = {}): Call => ({
  tool: "t",
  args,
  ...more,
});

const CASES: Array<[string, Record<string, unknown>, Call, boolean]> = [
  ["tool glob", { tool: "read_*" }, { tool: "read_file" }, true],
  ["tool glob is whole-name", { tool: "read" }, { tool: "read_file" }, false],
  ["tool list", { tool: ["a", "t"] }, call({}), true],
  ["server needs a server", { server: "*" }, call({}), false],
  ["server glob", { server: "git*" }, call({}, { server: "github" }), true],
  ["scalar is strict equality", { "args.n": 5 }, call({ n: "5" }), false],
  ["-0 equals 0", { "args.n": 0 }, call({ n: -0 }), true],
  ["ne holds for a missing value", { "args.s": { ne: "x" } }, call({}), true],
  ["not_in holds for a missing value", { "args.s": { not_in: ["x"] } }, call({}), true],
  ["in never holds for a missing value", { "args.s": { in: [null] } }, call({}), false],
  ["numbers compare only with numbers", { "args.n": { gt: 100 } }, call({ n: "1000" }), false],
  ["NaN compares with nothing", { "args.n": { lt: 1 } }, call({ n: Number.NaN }), false],
  ["infinity is a number", { "args.n": { gt: 1e308 } }, call({ n: Number.POSITIVE_INFINITY }), true],
  ["contains: substring", { "args.s": { contains: "b" } }, call({ s: "abc" }), true],
  ["contains: element", { "args.s": { contains: 1 } }, call({ s: [0, 1] }), true],
  ["contains: not a substring test for numbers", { "args.s": { contains: 1 } }, call({ s: "1" }), false],
  ["regex is unanchored", { "args.s": { regex: "b" } }, call({ s: "abc" }), true],
  ["regex on a non-string", { "args.s": { regex: "1" } }, call({ s: 1 }), false],
  ["prefix", { "args.s": { prefix: "/etc" } }, call({ s: "/etc/passwd" }), true],
  ["glob operator", { "args.h": { glob: "*.example" } }, call({ h: "a.example" }), true],
  ["exists: null is present", { "args.a": { exists: true } }, call({ a: null }), true],
  ["exists false: missing", { "args.a": { exists: false } }, call({}), true],
  [
    "operators apply to one value together",
    { "args.i.n": { gt: 1, lt: 3 } },
    call({ i: [{ n: 0 }, { n: 5 }] }),
    false,
  ],
  ["through an array: any element", { "args.i.n": 2 }, call({ i: [{ n: 1 }, { n: 2 }] }), true],
  ["numeric segment indexes", { "args.i.1": "b" }, call({ i: ["a", "b"] }), true],
  ["own properties only", { "args.toString": { exists: true } }, call({}), false],
  ["__proto__ is data", { "args.__proto__.x": 1 }, call(JSON.parse('{"__proto__": {"x": 1}}')), true],
  ["__proto__ never reaches the prototype", { "args.__proto__.x": 1 }, call({}), false],
  ["agent attribute", { "agent.role": "admin" }, call({}, { agent: { role: "admin" } }), true],
  ["an empty operator map holds", { "args.a": {} }, call({}), true],
  ["any", { any: [{ tool: "x" }, { tool: "t" }] }, call({}), true],
  ["all", { all: [{ tool: "t" }, { "args.a": 1 }] }, call({}), false],
  ["not", { not: { tool: "t" } }, call({}), false],
  ["CEL", { expr: "tool == 't' && size(args) == 1" }, call({ a: 1 }), true],
  [
    "CEL sees `constructor` as a key",
    { expr: "'constructor' in args" },
    call(JSON.parse('{"constructor": 1}')),
    true,
  ],
  ["a false conjunct outweighs a failing expr", { expr: "args.none == 1", tool: "x" }, call({}), false],
  [
    "a true branch outweighs a failing expr",
    { any: [{ expr: "args.none == 1" }, { tool: "t" }] },
    call({}),
    true,
  ],
];

describe("reference: every condition key and operator", () => {
  it.each(CASES)("%s", (_, when, c, expected) => {
    expect(holds(when, c)).toBe(expected);
  });

  it("a failing expr with nothing to outweigh it is an internal error: deny (closed), flag (open)", () => {
    for (const [fail, verdict] of [
      ["closed", "deny"],
      ["open", "flag"],
    ] as const) {
      const { policy } = loadPolicyObject({
        version: 1,
        fail,
        rules: [{ name: "r", when: { expr: "args.none == 1" }, verdict: "allow" }],
      });
      expect(referenceDecide(policy, call({}))).toMatchObject({ verdict, rule: "internal-error" });
    }
  });

  it("risk and sink read the declaration; no risk fails every comparison", () => {
    const extra = { tools: { t: { risk: "high", sink: "external" }, u: {} } };
    expect(holds({ risk: { gte: "moderate" } }, call({}), {}, extra)).toBe(true);
    expect(holds({ risk: { lt: "critical" } }, { tool: "u" }, {}, extra)).toBe(false);
    expect(holds({ sink: ["internal", "external"] }, call({}), {}, extra)).toBe(true);
  });

  it("seen and flows come from the session; unless drops endorsed leaves; host labels count only on present arguments", () => {
    const hit = { label: "u", arg: "to", source: "web#1", text: "a@b.example" };
    const session: ReferenceSession = {
      seen: ["u", "p"],
      flows: [hit],
      endorsed: (text, labels) => text === "a@b.example" && labels.includes("user"),
    };
    expect(holds({ seen: { all: ["u", "p"] } }, call({}), session)).toBe(true);
    expect(holds({ flows: ["u"] }, call({ to: "a@b.example" }), session)).toBe(true);
    expect(holds({ "args.to": { flows: ["u"] } }, call({ to: "a@b.example" }), session)).toBe(true);
    expect(holds({ "args.body": { flows: ["u"] } }, call({ to: "a@b.example" }), session)).toBe(false);
    expect(holds({ flows: { labels: ["u"], unless: ["user"] } }, call({ to: "a@b.example" }), session)).toBe(
      false,
    );
    expect(holds({ flows: ["p"] }, call({ a: "x" }, { labels: { a: ["p"] } }))).toBe(true);
    expect(holds({ flows: ["p"] }, call({}, { labels: { a: ["p"] } }))).toBe(false);
  });

  it("from: a value (every element of a list) the source gave", () => {
    const session: ReferenceSession = {
      fromValues: (text, sources) => sources.includes("contacts") && text.endsWith("@corp.example"),
    };
    expect(holds({ "args.to": { from: ["contacts"] } }, call({ to: "bob@corp.example" }), session)).toBe(
      true,
    );
    expect(
      holds(
        { "args.to": { from: ["contacts"] } },
        call({ to: ["bob@corp.example", "eve@evil.example"] }),
        session,
      ),
    ).toBe(false);
  });
});

describe("reference: decisions", () => {
  const policy = loadPolicyText(`
version: 1
default: ask
allow: ["read_*"]
deny: [drop]
tools:
  send_email: { on_violation: flag, args: { to: { regex: "@corp[.]example$" } } }
rules:
  - { name: b, when: { tool: read_x }, verdict: ask }
  - { name: a, when: { tool: read_x }, verdict: ask }
  - { name: constrained, when: { findings: ["regex.*"] }, verdict: allow }
`).policy;

  it.each([
    ["nothing matched: the default", { tool: "other" }, "ask", null],
    ["shorthand allow", { tool: "read_file" }, "allow", "allow:read_*"],
    ["most severe wins, ties by the smaller name", { tool: "read_x" }, "ask", "a"],
    ["deny list", { tool: "drop" }, "deny", "deny:drop"],
    [
      "a finding contributes with its code; on_violation sets its verdict",
      { tool: "send_email", args: { to: "x@evil.example" } },
      "flag",
      "regex.mismatch",
    ],
    ["look-alike of a declared tool", { tool: "send-email" }, "deny", "tool.shadowing"],
    ["malformed: not an object", null, "deny", "malformed-call"],
    [
      "malformed: 65 levels",
      { tool: "t", args: { a: JSON.parse(`${"[".repeat(64)}1${"]".repeat(64)}`) } },
      "deny",
      "malformed-call",
    ],
    [
      "malformed: a name over the text bound",
      { tool: "t", args: { ["k".repeat(8 * 1024 * 1024 + 1)]: 1 } },
      "deny",
      "malformed-call",
    ],
  ] as const)("%s", (_, c, verdict, rule) => {
    const decision = referenceDecide(policy, c as unknown as Call);
    expect([decision.verdict, decision.rule]).toEqual([verdict, rule]);
  });

  it("lists every contributor, most severe first", () => {
    expect(referenceDecide(policy, { tool: "read_x" }).matched).toEqual(["a", "b", "allow:read_*"]);
  });
});

describe("reference: paths and globs", () => {
  it.each([
    [{ a: { b: 1 } }, "a.b", [1]],
    [{ a: [{ b: 1 }, { c: 2 }, 3] }, "a.b", [1, undefined, undefined]],
    [{ a: [] }, "a.b", [undefined]],
    [{ a: [[{ b: 1 }]] }, "a.b", [1]],
    [{ a: ["x", "y"] }, "a.1", ["y"]],
    [{ a: "text" }, "a.length", [undefined]],
  ])("valuesAt(%j, %s)", (value, path, expected) => {
    expect(valuesAt(value, path.split("."))).toEqual(expected);
  });

  it.each([
    ["a*", "a", true],
    ["a*", "ba", false],
    ["*", "", true],
    ["?", "😀", true],
    ["??", "😀", false],
    ["[a-c]x", "bx", true],
    ["[!a-c]x", "bx", false],
    ["[^a]", "b", true],
    ["a\\*", "a*", true],
    ["a\\*", "ab", false],
    ["x\\", "x\\", true],
    ["*a*a*c", `${"a".repeat(100_000)}b`, false],
    ["*.example", "a\n.example", true],
  ])("glob %s on %j", (glob, text, expected) => {
    expect(globMatches(glob, text)).toBe(expected);
  });
});
