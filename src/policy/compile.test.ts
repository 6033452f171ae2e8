import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PolicyLoadError } from "../core/index.js";
import { compilePolicyFile, compilePolicyText } from "./index.js";

function errorsOf(text: string, file = "policy.yaml"): string[] {
  try {
    compilePolicyText(text, file);
  } catch (error) {
    if (!(error instanceof PolicyLoadError)) throw error;
    return error.issues.map((i) => `${i.line}:${i.col}: ${i.message}${i.help ? ` | ${i.help}` : ""}`);
  }
  return [];
}

/** A policy of one rule `a` (verdict deny) with this `when`. */
const rule = (when: string) => `version: 1\nrules:\n  - name: a\n    when: ${when}\n    verdict: deny\n`;
/** The same, the rule written on one line. */
const inlineRule = (when: string) => `version: 1\nrules:\n  - { name: a, when: ${when}, verdict: deny }\n`;
/** A policy declaring tool `t` with one key (`sinc: external`). */
const tool = (decl: string) => `version: 1\ntools:\n  t:\n    ${decl}\n`;
/** A policy with one limit `l` (its keys after the name). */
const limit = (keys: string) => `version: 1\nlimits:\n  - { name: l, ${keys} }\n`;
/** A policy declaring tool `t` with these argument constraints (one line, `arg: { kind: options }`). */
const argsOf = (args: string) => `version: 1\ntools:\n  t:\n    args:\n      ${args}\n`;

/** Each malformed policy, and the first error it must produce: line:col and a fragment of the message. */
const MALFORMED: Array<[string, string, string]> = [
  ["bad YAML indentation", "version: 1\nrules:\n  - name: a\n   verdict: deny\n", "4:"],
  ["unclosed flow sequence", "version: 1\nallow: [a, b\n", "invalid YAML"],
  ["duplicate key", "version: 1\ndefault: deny\ndefault: allow\n", "3:1: invalid YAML"],
  ["not a mapping", "- a\n- b\n", "1:1: a policy is a mapping"],
  ["missing version", "name: x\n", "version"],
  ["wrong version", "version: 2\n", "1:10:"],
  ["unknown top-level key", "version: 1\nrulez: []\n", "2:1: unknown key `rulez` | did you mean `rules`?"],
  ["wrong type for default", "version: 1\ndefault: maybe\n", "2:10:"],
  ["wrong type for allow", "version: 1\nallow: search\n", "2:8:"],
  ["unknown tool key", tool("sinc: external"), "4:5: unknown key `sinc` | did you mean `sink`?"],
  ["bad risk level", "version: 1\ntools:\n  t: { risk: extreme }\n", "3:14:"],
  ["negative cost", "version: 1\ntools:\n  t: { cost: -1 }\n", "3:14:"],
  ["unknown constraint kind", argsOf("u: { urll: {} }"), "5:12: unknown constraint kind `urll`"],
  ["bad constraint options", argsOf("n: { range: { min: 5, max: 1 } }"), "5:19: `range`: min 5 is greater"],
  ["unknown constraint option", argsOf("n: { range: { mni: 5 } }"), "unknown `range` option `mni`"],
  ["rule without verdict", "version: 1\nrules:\n  - name: a\n    when: { tool: x }\n", "3:5:"],
  ["rule with bad verdict", "version: 1\nrules:\n  - { name: a, verdict: block }\n", "3:25:"],
  ["unknown condition", rule("{ tol: x }"), "4:13: unknown condition `tol` | did you mean `tool`?"],
  ["unknown operator", rule("{ args.n: { gtt: 5 } }"), "4:23: unknown operator `gtt` | did you mean `gt`?"],
  ["operator with wrong operand", rule("{ args.n: { gt: five } }"), "4:27: `gt` takes a finite number"],
  ["bad glob", 'version: 1\nallow: ["read_[abc"]\n', "2:9: bad glob: unterminated `[`"],
  ["bad glob in rule", inlineRule('{ tool: "x[" }'), "bad glob"],
  ["bad regex", rule('{ args.s: { regex: "(a" } }'), "4:30: bad regex"],
  ["backtracking regex", rule('{ args.s: { regex: "(a)\\\\1" } }'), "bad regex"],
  ["bad CEL syntax", rule('{ expr: "agent.role ==" }'), "4:19: bad CEL expression"],
  ["CEL type error", rule('{ expr: "tool + 1" }'), "4:19: CEL type error"],
  ["CEL not boolean", rule('{ expr: "tool" }'), "must be `bool`"],
  ["bad risk in when", inlineRule("{ risk: { gte: huge } }"), "unknown risk level `huge`"],
  ["list where a value test wants a scalar", inlineRule("{ args.x: [1, 2] }"), "a list is ambiguous here"],
  [
    "duplicate rule names",
    "version: 1\nrules:\n  - { name: a, verdict: deny }\n  - { name: a, verdict: allow }\n",
    "4:5: rule name `a` conflicts",
  ],
  ["limit with both rate and max", limit("rate: 5/minute, max: 3"), "exactly one of `rate` or `max`"],
  ["bad rate", limit("rate: fast"), "expected a rate like"],
  ["bad limit scope", limit("max: 3, per: planet"), "3:29: unknown scope `planet`"],
  ["unknown detector", "version: 1\ndetect: { secretz: deny }\n", "2:11: unknown detector `secretz`"],
  ["bad test expectation", "version: 1\ntests:\n  - { call: { tool: a }, expect: maybe }\n", "3:34:"],
  ["flows with unknown key", inlineRule("{ flows: { labels: [x], unles: [y] } }"), "unknown key `unles`"],
];

describe("malformed policies fail with file:line:col", () => {
  it.each(MALFORMED)("%s", (_name, text, expected) => {
    const errors = errorsOf(text);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.join("\n")).toContain(expected);
  });

  it("has at least 20 cases", () => {
    expect(MALFORMED.length).toBeGreaterThanOrEqual(20);
  });
});

/** Names of the rules a tool can meet, whichever index holds them. */
function ruleNames(policy: ReturnType<typeof compilePolicyText>, tool: string): string[] {
  const set = policy.rulesFor(tool);
  return [...set.always, ...[...set.byArg.values()].flat()].map((r) => r.name);
}

describe("extends", () => {
  const dir = mkdtempSync(join(tmpdir(), "tw-extends-"));
  const write = (name: string, text: string) => {
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  };

  it("concatenates rules and merges declarations from relative paths", () => {
    write(
      "base.yaml",
      "version: 1\ndeny: ['delete_*']\ntools:\n  send_email: { sink: external }\nrules:\n  - { name: base-rule, when: { tool: x }, verdict: ask }\n",
    );
    const main = write(
      "main.yaml",
      "version: 1\nextends: ./base.yaml\nallow: [search]\nrules:\n  - { name: own-rule, when: { tool: y }, verdict: deny }\n",
    );
    const policy = compilePolicyFile(main);
    expect(policy.tools.get("send_email")?.sink).toBe("external");
    expect(ruleNames(policy, "x")).toEqual(["base-rule"]);
    expect(ruleNames(policy, "delete_me")).toEqual(["deny:delete_*"]);
    expect(ruleNames(policy, "search")).toEqual(["allow:search"]);
  });

  it("refuses a cycle, pointing at the extends entry", () => {
    write("a.yaml", "version: 1\nextends: [./b.yaml]\n");
    write("b.yaml", "version: 1\nextends: [./a.yaml]\n");
    expect(() => compilePolicyFile(join(dir, "a.yaml"))).toThrow(
      /b\.yaml:2:11: extends cycle: .*a\.yaml -> .*b\.yaml -> .*a\.yaml/,
    );
  });

  it("refuses conflicting tool declarations", () => {
    write("c1.yaml", "version: 1\ntools:\n  t: { risk: low }\n");
    write("c2.yaml", "version: 1\nextends: [./c1.yaml]\ntools:\n  t: { risk: high }\n");
    expect(() => compilePolicyFile(join(dir, "c2.yaml"))).toThrow(
      /c2\.yaml:4:3: tool `t` conflicts with an earlier declaration \(also at .*c1\.yaml:3:3\)/,
    );
  });

  it("reports a missing base file at the extends entry", () => {
    write("d.yaml", "version: 1\nextends: ./nope.yaml\n");
    expect(() => compilePolicyFile(join(dir, "d.yaml"))).toThrow(
      /d\.yaml:2:10: cannot read .*nope\.yaml.*file not found/,
    );
  });

  it("errors in a base file point into the base file", () => {
    write("bad-base.yaml", "version: 1\nrules:\n  - { name: r, when: { expr: 'tool +' }, verdict: deny }\n");
    write("e.yaml", "version: 1\nextends: ./bad-base.yaml\n");
    expect(() => compilePolicyFile(join(dir, "e.yaml"))).toThrow(/bad-base\.yaml:3:30: bad CEL expression/);
  });
});

describe("the rule index", () => {
  it("only offers rules whose tool globs can match", () => {
    const policy = compilePolicyText(
      "version: 1\nallow: ['read_*']\nrules:\n  - { name: a, when: { tool: [x, 'y*'] }, verdict: deny }\n  - { name: b, when: { args.q: 1 }, verdict: deny }\n",
    );
    expect(ruleNames(policy, "read_file")).toEqual(["allow:read_*", "b"]);
    expect(ruleNames(policy, "yak")).toEqual(["a", "b"]);
    expect(ruleNames(policy, "zzz")).toEqual(["b"]);
    expect(
      policy
        .rulesFor("zzz")
        .byArg.get("q")
        ?.map((r) => r.name),
    ).toEqual(["b"]);
  });

  it("indexes rules by an argument they need, but not by one that may be missing", () => {
    const policy = compilePolicyText(
      "version: 1\nrules:\n  - { name: needs, when: { args.a.b: { gt: 1 } }, verdict: deny }\n  - { name: missing-ok, when: { args.a: { ne: 1 } }, verdict: deny }\n  - { name: absent, when: { args.z: { exists: false } }, verdict: deny }\n",
    );
    const set = policy.rulesFor("t");
    expect(set.always.map((r) => r.name)).toEqual(["missing-ok", "absent"]);
    expect([...set.byArg.keys()]).toEqual(["a"]);
  });
});

describe("provenance warnings (issue 18)", () => {
  const warningsOf = (text: string) =>
    compilePolicyText(text, "policy.yaml").warnings.map((w) => `${w.line}:${w.col}: ${w.message}`);

  it("warns about `fields` without `produces`, and a `from` source that produces labels", () => {
    expect(
      warningsOf(`version: 1
tools:
  get_email: { fields: { body: [untrusted] } }
  contacts: { produces: [private] }
  web: { produces: [untrusted] }
rules:
  - name: known
    when: { args.to: { from: [contacts] } }
    verdict: flag
  - name: also-known
    when: { args.cc: { from: { tools: [contacts], match: value } } }
    verdict: flag
  - name: endorsed
    when: { args.to: { flows: { labels: [untrusted], unless: ["tool:web"] } } }
    verdict: deny
`),
    ).toEqual([
      "3:16: tool `get_email` has `fields` and no `produces`",
      "8:30: trusted value source `contacts` produces labels (private): none of its values is trusted",
      "14:63: trusted value source `web` produces labels (untrusted): none of its values is trusted",
    ]);
  });

  it("is quiet when the policy says what it means", () => {
    expect(
      warningsOf(`version: 1
tools:
  get_email: { produces: [], fields: { body: [untrusted] } }
  contacts: {}
rules:
  - { name: known, when: { args.to: { from: [contacts, user, "args:send.to"] } }, verdict: flag }
`),
    ).toEqual([]);
  });

  it.each([
    ["{ from: { tools: [a], match: exact } }", "`match` is `value` or `word`, not `exact`"],
    ["{ from: { tools: [a], mode: value } }", "unknown key `mode` in `from`"],
    ['{ from: ["args:send"] }', "`args:send`: an earlier call's values are named `args:<tool>.<path>`"],
  ])("refuses %s", (spec, message) => {
    expect(
      errorsOf(`version: 1\nrules:\n  - { name: r, when: { args.to: ${spec} }, verdict: flag }\n`).join("\n"),
    ).toContain(message);
  });
});
