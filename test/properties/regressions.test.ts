import { describe, expect, it } from "vitest";
import type { Call, Verdict } from "../../src/core/index.js";
import { PolicyLoadError } from "../../src/core/index.js";
import { evaluateCall, Warden } from "../../src/gateway/index.js";
import { compilePolicyText } from "../../src/policy/index.js";
import { referenceDecide } from "../../src/policy/reference.js";

/**
 * Engine bugs found by the differential and property tests (and the hostile-input work), each
 * kept as the smallest case that failed before its fix. Every case is also decided by the
 * reference evaluator, which must agree.
 */

function decide(policyText: string, call: Call) {
  const policy = compilePolicyText(policyText, "regression.yaml");
  const engine = evaluateCall(policy, call, undefined);
  const reference = referenceDecide(policy.loaded.policy, call);
  expect({ verdict: engine.verdict, rule: engine.rule }).toEqual({
    verdict: reference.verdict,
    rule: reference.rule,
  });
  return engine;
}

function loadErrors(policyText: string): string[] {
  try {
    compilePolicyText(policyText, "regression.yaml");
  } catch (error) {
    if (error instanceof PolicyLoadError) return error.issues.map((i) => `${i.line}:${i.col}: ${i.message}`);
    throw error;
  }
  return [];
}

describe("`__proto__` keys in a policy are refused, not silently dropped", () => {
  // zod's records drop a `__proto__` key; the constraint, declaration or condition vanished
  // and the policy meant something weaker than what was written.
  const CASES: Array<[string, string, string]> = [
    [
      "an argument constraint",
      "version: 1\ndefault: allow\ntools:\n  t:\n    args:\n      __proto__: { enum: [ok] }\n",
      "6:7:",
    ],
    ["a tool declaration", "version: 1\ntools:\n  __proto__: { sink: external }\n", "3:3:"],
    [
      "a condition key",
      "version: 1\nrules:\n  - { name: r, when: { __proto__: { tool: x } }, verdict: deny }\n",
      "3:24:",
    ],
    ["a detector", "version: 1\ndetect: { __proto__: deny }\n", "2:11:"],
    [
      "a test's call arguments",
      "version: 1\ntests:\n  - { call: { tool: t, args: { __proto__: 1 } }, expect: deny }\n",
      "3:32:",
    ],
  ];
  it.each(CASES)("%s", (_, text, position) => {
    const errors = loadErrors(text);
    expect(
      errors.some((e) => e.startsWith(position) && e.includes("`__proto__`")),
      errors.join("\n"),
    ).toBe(true);
  });
});

describe("a recursive YAML alias is refused at load, not a crash", () => {
  // Found while writing the loader fuzzer: `when: &w { not: *w }` made a cyclic value, and compiling it
  // overflowed the stack (a RangeError, not a PolicyLoadError).
  const CASES: Array<[string, string]> = [
    ["in a condition", "version: 1\nrules:\n  - name: r\n    verdict: deny\n    when: &w { not: *w }\n"],
    [
      "in a list of conditions",
      "version: 1\nrules:\n  - name: r\n    verdict: deny\n    when: &w { any: [*w] }\n",
    ],
    ["in a test call", "version: 1\ntests:\n  - &t { call: { tool: t, args: { x: *t } }, expect: deny }\n"],
    ["in a reserved section", "version: 1\njudge: &a { x: *a }\n"],
  ];
  it.each(CASES)("%s", (_, text) => {
    expect(loadErrors(text).join("\n")).toMatch(/recursive alias/);
  });
});

describe("a YAML alias the parser cannot resolve is a load error, not a crash", () => {
  // Found by the loader fuzzer: `toJS` throws a ReferenceError for an alias used before its
  // anchor and for an alias bomb (past 100 aliases), and it escaped the loader.
  const bomb =
    "version: 1\njudge:\n  a: &a [1]\n  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n  d: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n";
  const CASES: Array<[string, string, RegExp]> = [
    ["alias before its anchor", "version: 1\njudge: { x: *a, y: &a 1 }\n", /alias/],
    ["undefined alias", "version: 1\nname: *a\n", /alias/],
    ["alias bomb", bomb, /alias/],
  ];
  it.each(CASES)("%s", (_, text, message) => {
    expect(loadErrors(text).join("\n")).toMatch(message);
  });
});

describe("YAML the parser cannot handle is a load error, not a crash", () => {
  // Found by the loader fuzzer: 3,000 compact mappings on one line (`"b": rl": rl": ...`)
  // overflow the yaml parser's stack, and its RangeError escaped the loader.
  it("3,000 nested compact mappings", () => {
    const text = `{\n "version": 1,\n "judge": {\n  "b": ${'rl": '.repeat(3000)}{\n  }\n }\n}\n`;
    expect(loadErrors(text).join("\n")).toMatch(/invalid YAML/);
  });
});

describe("thousands of YAML errors are reported in linear time", () => {
  // Found by the loader fuzzer (a mutated 54 KB policy with 20,583 YAML errors took 2.6 s):
  // every issue split the whole text into lines to show its own. Not timed here; the file
  // below took seconds before and takes a fraction of one now.
  it("20,000 errors in a 40 KB file, each with its own line", () => {
    const errors = loadErrors(`version: 1\n${"]\n".repeat(20_000)}`);
    expect(errors).toHaveLength(20_000);
    expect(errors.at(-1)).toMatch(/^20001:1: invalid YAML/);
  });
});

describe("CEL sees arguments with an own `constructor` key as data", () => {
  // cel-js typed values by `value.constructor`: `{"constructor": null}` in the arguments made
  // every expression fail, an internal error the caller chose; under `fail: open` it let a
  // denied call run (flagged).
  const policy = `version: 1\nfail: open\ndeny: [delete_all]\nrules:\n  - { name: forced, when: { expr: "has(args.force)" }, verdict: ask }\n`;
  const CASES: Array<[string, Record<string, unknown>, Verdict, string | null]> = [
    ["top-level constructor key", JSON.parse('{"constructor": null}'), "deny", "deny:delete_all"],
    ["nested constructor key", JSON.parse('{"opts": {"constructor": 1}}'), "deny", "deny:delete_all"],
    ["with the tested key", JSON.parse('{"constructor": "x", "force": true}'), "deny", "deny:delete_all"],
  ];
  it.each(CASES)("%s", (_, args, verdict, rule) => {
    const decision = decide(policy, { tool: "delete_all", args });
    expect([decision.verdict, decision.rule]).toEqual([verdict, rule]);
  });
  it("an expression reads the `constructor` argument itself", () => {
    const text = `version: 1\ndefault: allow\nrules:\n  - { name: r, when: { expr: "args.constructor == 'x' && size(args) == 1" }, verdict: deny }\n`;
    expect(decide(text, { tool: "t", args: JSON.parse('{"constructor": "x"}') }).rule).toBe("r");
  });
});

describe("a runtime error in one condition does not depend on key order", () => {
  // `{expr: <fails>, tool: x}` was an internal error for tool x but `{tool: x, expr: ...}` was
  // not (and the tool index hid it for other tools): a false conjunct now outweighs an error.
  const failing = "args.missing == 'x'";
  const CASES: Array<[string, string, Call, string | null]> = [
    ["expr first, false agent test", `{ expr: "${failing}", agent.role: admin }`, { tool: "t" }, null],
    ["expr last, false agent test", `{ agent.role: admin, expr: "${failing}" }`, { tool: "t" }, null],
    ["inside all:", `{ all: [{ expr: "${failing}" }, { server: gh }] }`, { tool: "t" }, null],
    ["any: with one true branch", `{ any: [{ expr: "${failing}" }, { tool: t }] }`, { tool: "t" }, "r"],
    [
      "no false conjunct: the error stands",
      `{ expr: "${failing}", tool: t }`,
      { tool: "t" },
      "internal-error",
    ],
  ];
  it.each(CASES)("%s", (_, when, call, rule) => {
    expect(
      decide(`version: 1\ndefault: allow\nrules:\n  - { name: r, when: ${when}, verdict: deny }\n`, call)
        .rule,
    ).toBe(rule);
  });
});

describe("NaN operands are refused at load", () => {
  // `eq: .nan` never matched NaN while `in: [.nan]` and `contains: .nan` did.
  it.each([
    "{ eq: .nan }",
    "{ in: [1, .nan] }",
    "{ not_in: [.nan] }",
    "{ contains: .nan }",
    "{ ne: .nan }",
    ".nan",
  ])("args.a: %s", (spec) => {
    const errors = loadErrors(
      `version: 1\nrules:\n  - name: r\n    when: { args.a: ${spec} }\n    verdict: deny\n`,
    );
    expect(errors.join("\n")).toMatch(/NaN/);
  });
});

describe("malformed parts of a call deny whatever `fail` says", () => {
  // A non-string `server`, non-list `labels`, an unreadable or too deep `agent` threw inside the
  // engine: an internal error, which `fail: open` turned into a flag (the call ran).
  let deep: unknown = [];
  for (let i = 0; i < 10_000; i++) deep = [deep];
  const throwing = {};
  Object.defineProperty(throwing, "x", {
    enumerable: true,
    get: () => {
      throw new Error("boom");
    },
  });
  const CASES: Array<[string, Call]> = [
    ["server is a number", { tool: "t", server: 5 } as unknown as Call],
    ["labels hold a number", { tool: "t", labels: { a: 5 } } as unknown as Call],
    ["labels is an array", { tool: "t", labels: [["u"]] } as unknown as Call],
    ["agent nested 10,000 deep", { tool: "t", agent: { a: deep } }],
    ["agent is an array", { tool: "t", agent: ["admin"] } as unknown as Call],
    ["agent holds a function", { tool: "t", agent: { f: () => 1 } }],
    ["args with a throwing getter", { tool: "t", args: throwing as Record<string, unknown> }],
  ];
  it.each(CASES)("%s", (_, call) => {
    const text = `version: 1\nfail: open\ndefault: allow\nrules:\n  - { name: r, when: { server: "x*", agent.a.b: 1, flows: [u] }, verdict: deny }\n`;
    const decision = decide(text, call);
    expect([decision.verdict, decision.rule]).toEqual(["deny", "malformed-call"]);
  });
});

describe("host labels on an argument that is absent carry nothing", () => {
  // The call-level `flows` counted them while `args.<x>: { flows }` (indexed by argument) did not.
  const text = `version: 1\ndefault: allow\nrules:\n  - { name: call-level, when: { flows: [u] }, verdict: deny }\n  - { name: per-arg, when: { args.a: { flows: [u] } }, verdict: deny }\n`;
  it("absent", () => {
    const decision = decide(text, { tool: "t", labels: { a: ["u"] } });
    expect([decision.rule, decision.labels]).toEqual([null, []]);
  });
  it("present", () => {
    const decision = decide(text, { tool: "t", args: { a: "x" }, labels: { a: ["u"] } });
    expect([decision.rule, decision.matched]).toEqual(["call-level", ["call-level", "per-arg"]]);
  });
});

describe("argument names count toward the 8 MiB bound on text", () => {
  // Only string values were counted: 50 keys of 10 MB each (500 MB of text) were walked by the
  // flow scanner for 5 s; a 9 MiB key passed the bound that a 9 MiB value does not.
  const key = "k".repeat(9 * 1024 * 1024);
  it("one 9 MiB key", () => {
    const decision = decide("version: 1\ndefault: allow\n", { tool: "t", args: { [key]: 1 } });
    expect([decision.verdict, decision.rule]).toEqual(["deny", "malformed-call"]);
  });
  it("keys and values together", () => {
    const half = "v".repeat(4.5 * 1024 * 1024);
    const decision = decide("version: 1\ndefault: allow\n", { tool: "t", args: { [half]: half } });
    expect([decision.verdict, decision.rule]).toEqual(["deny", "malformed-call"]);
  });
  it("in the agent too", () => {
    const decision = decide("version: 1\ndefault: allow\n", { tool: "t", agent: { [key]: 1 } });
    expect([decision.verdict, decision.rule]).toEqual(["deny", "malformed-call"]);
  });
});

describe("Warden.decide never throws, even for a call that is not an object", () => {
  // Found by the hostile CLI test: a `null` line in `check --jsonl` stopped the stream (exit 1),
  // since decide read `call.tool` outside its guard (plans, cost, async checks).
  it.each([
    ["null", null],
    ["a number", 42],
    ["a string", "search"],
    ["an array", [1, 2]],
  ])("%s", async (_, call) => {
    const warden = new Warden(compilePolicyText("version: 1\nallow: [search]\n"));
    const decision = await warden.decide(call as unknown as Call);
    expect([decision.verdict, decision.rule]).toEqual(["deny", "malformed-call"]);
  });
});

describe("a constraint on a nested argument checks it through arrays, as conditions read it", () => {
  // `tools.t.args."items.url": { url: ... }` checked `{items: {url}}` but skipped
  // `{items: [{url}]}`: wrapping the object in an array dodged the constraint.
  const text = `version: 1\ndefault: allow\ntools:\n  t:\n    args:\n      items.url: { url: { private: block } }\n      tags: { max_length: 2 }\n`;
  const metadata = "http://169.254.169.254/latest";
  it.each([
    ["an object", { items: { url: metadata } }, "url.metadata"],
    ["an array of objects", { items: [{ url: "https://example.com" }, { url: metadata }] }, "url.metadata"],
    ["nested arrays", { items: [[{ url: metadata }]] }, "url.metadata"],
    ["an element without the argument is not checked", { items: [{}, { other: 1 }] }, null],
    ["an array as the value itself is one value", { tags: ["a", "b", "c"] }, "max_length.exceeded"],
  ] as const)("%s", (_, args, rule) => {
    expect(decide(text, { tool: "t", args: args as Record<string, unknown> }).rule).toBe(rule);
  });
});

describe("`args.<path>: { flows }` reads through arrays, as the other operators do", () => {
  // `args.items.body: { contains: x }` matched `{items: [{body}]}` but `{ flows: [u] }` on the
  // same path never did: the labelled leaf is `items.0.body`, which is not under `items.body`.
  const text = `version: 1\ndefault: allow\nrules:\n  - { name: r, when: { args.items.body: { flows: [u] } }, verdict: deny }\n`;
  it.each([
    ["an array of objects", { items: [{ body: "a" }, { body: "b" }] }, { "items.1.body": ["u"] }, "r"],
    ["an object", { items: { body: "b" } }, { "items.body": ["u"] }, "r"],
    ["nested arrays", { items: [[{ body: "b" }]] }, { "items.0.0.body": ["u"] }, "r"],
    ["a leaf under the path", { items: [{ body: { x: "b" } }] }, { "items.0.body.x": ["u"] }, "r"],
    ["another key of the element", { items: [{ body: "a", to: "b" }] }, { "items.0.to": ["u"] }, null],
    [
      "an object with a numeric key is not an array",
      { items: { "0": { body: "b" } } },
      { "items.0.body": ["u"] },
      null,
    ],
  ] as const)("%s", (_, args, labels, rule) => {
    expect(decide(text, { tool: "t", args, labels } as unknown as Call).rule).toBe(rule);
  });
});
