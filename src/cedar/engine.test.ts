import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PolicyLoadError } from "../core/index.js";
import type { Call, PolicyIssue } from "../core/index.js";
import { Warden } from "../gateway/warden.js";
import { EQUIVALENT_NATIVE, writeCedarPolicy } from "./bench.js";
import { toCedar } from "./engine.js";

const dir = mkdtempSync(join(tmpdir(), "tw-cedar-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A fresh folder with `files`; returns the path of `policy.yaml` in it. */
function files(entries: Record<string, string>): string {
  const at = mkdtempSync(join(dir, "case-"));
  for (const [name, text] of Object.entries(entries)) writeFileSync(join(at, name), text);
  return join(at, "policy.yaml");
}

function loadIssues(file: string): PolicyIssue[] {
  try {
    Warden.fromFile(file);
  } catch (error) {
    if (error instanceof PolicyLoadError) return error.issues;
    throw error;
  }
  throw new Error("the policy loaded");
}

const support = { id: "bot", role: "support" };
const admin = { id: "root", role: "admin" };

const CALLS: Array<{ name: string; call: Call }> = [
  { name: "delete anywhere", call: { tool: "delete_file", args: { path: "/tmp/x" }, agent: support } },
  { name: "read in /tmp", call: { tool: "read_file", args: { path: "/tmp/notes.txt" }, agent: support } },
  { name: "read outside /tmp", call: { tool: "read_file", args: { path: "/etc/passwd" }, agent: support } },
  { name: "read without a path", call: { tool: "read_file", args: {}, agent: support } },
  { name: "small refund by support", call: { tool: "refund", args: { amount: 50 }, agent: support } },
  { name: "refund at the limit", call: { tool: "refund", args: { amount: 100 }, agent: support } },
  { name: "large refund", call: { tool: "refund", args: { amount: 500 }, agent: support } },
  {
    name: "refund by an intern",
    call: { tool: "refund", args: { amount: 5 }, agent: { id: "i", role: "intern" } },
  },
  { name: "refund by an anonymous agent", call: { tool: "refund", args: { amount: 5 } } },
  {
    name: "clean email",
    call: { tool: "send_email", args: { to: "a@corp.example", body: "hi" }, agent: support },
  },
  {
    name: "email carrying untrusted content",
    call: {
      tool: "send_email",
      args: { to: "a@corp.example", body: "page text" },
      agent: support,
      labels: { body: ["untrusted"] },
    },
  },
  {
    name: "read on prod by an admin",
    call: { tool: "read_file", args: { path: "/tmp/a" }, server: "prod", agent: admin },
  },
  {
    name: "read on prod by support",
    call: { tool: "read_file", args: { path: "/tmp/a" }, server: "prod", agent: support },
  },
  {
    name: "refund on prod by support",
    call: { tool: "refund", args: { amount: 5 }, server: "prod", agent: support },
  },
  {
    name: "unknown tool on dev",
    call: { tool: "list_dir", args: { path: "/" }, server: "dev", agent: support },
  },
];

describe("Cedar decisions equal the equivalent native policy", () => {
  const cedar = Warden.fromFile(writeCedarPolicy(mkdtempSync(join(dir, "equiv-"))));
  const native = Warden.fromObject(EQUIVALENT_NATIVE);
  const name = (rule: string | null) => (rule === null ? null : rule.replace(/^cedar:/, ""));

  it.each(CALLS)("$name", ({ call }) => {
    const a = cedar.evaluate(call);
    const b = native.evaluate(call);
    expect(a.verdict).toBe(b.verdict);
    expect(name(a.rule)).toBe(b.rule);
    // Cedar names every satisfied policy of the winning effect; under a forbid it does not say which permits held.
    const cedarMatched = (a.matched ?? []).map(name);
    const nativeMatched = b.matched ?? [];
    if (b.verdict === "deny") expect(nativeMatched).toEqual(expect.arrayContaining(cedarMatched));
    else expect(cedarMatched).toEqual(nativeMatched);
  });

  it("covers every verdict the policy can give", () => {
    const rules = new Set(CALLS.map(({ call }) => native.evaluate(call).rule));
    expect(rules).toEqual(
      new Set([
        null,
        "no-delete",
        "tmp-reads",
        "small-refunds",
        "no-untrusted-email",
        "emails",
        "prod-admins-only",
      ]),
    );
  });

  it("names the Cedar policy and its place in the reason", () => {
    const decision = cedar.evaluate(CALLS[0].call);
    expect(decision).toMatchObject({ verdict: "deny", rule: "cedar:no-delete" });
    expect(decision.reason).toMatch(/^Cedar policy `no-delete` \(authz\.cedar:1:1\) forbids the call$/);
  });
});

describe("Cedar with native rules: one deny-overrides combination", () => {
  const policy = files({
    "authz.cedar":
      'permit (principal, action == Action::"search", resource);\nforbid (principal, action == Action::"export", resource);\n',
    "policy.yaml": [
      "version: 1",
      "default: deny",
      "engine: { cedar: { policies: authz.cedar } }",
      "allow: [export, ping]",
      "deny: [search_admin]",
      "rules:",
      "  - { name: big-search, when: { tool: search, args.limit: { gt: 1000 } }, verdict: ask }",
      "",
    ].join("\n"),
  });
  const warden = Warden.fromFile(policy);

  it.each([
    { call: { tool: "search", args: { limit: 10 } }, verdict: "allow", rule: "cedar:policy0" },
    { call: { tool: "search", args: { limit: 5000 } }, verdict: "ask", rule: "big-search" },
    { call: { tool: "export" }, verdict: "deny", rule: "cedar:policy1" },
    { call: { tool: "ping" }, verdict: "allow", rule: "allow:ping" },
    { call: { tool: "other" }, verdict: "deny", rule: null },
  ])("$call.tool -> $verdict by $rule", ({ call, verdict, rule }) => {
    expect(warden.evaluate(call)).toMatchObject({ verdict, rule });
  });
});

describe("Cedar errors", () => {
  it("a parse error names the .cedar file, line and column", () => {
    const cedar =
      "permit (principal, action, resource);\n\npermit (principal, action, resource)\nwhen { context.args.x == };\n";
    const issues = loadIssues(
      files({
        "authz.cedar": cedar,
        "policy.yaml": "version: 1\nengine: { cedar: { policies: ./authz.cedar } }\n",
      }),
    );
    expect(issues).toHaveLength(1);
    expect(issues[0].file).toMatch(/authz\.cedar$/);
    expect(issues[0]).toMatchObject({
      line: 4,
      col: 26,
      message: expect.stringMatching(/^cedar: .*unexpected token `}`/),
    });
    expect(issues[0].frame).toContain("when { context.args.x == };");
  });

  it("validates against a schema: positions in the .cedar file, help from Cedar", () => {
    const schema = [
      "entity Agent = { role?: String };",
      "entity Server;",
      "action read_file appliesTo { principal: Agent, resource: Server, context: { tool: String, args: { path?: String }, labels: Set<String>, seen: Set<String> } };",
      "",
    ].join("\n");
    const cedar =
      'permit (principal, action == Action::"read_file", resource)\nwhen { principal has role && principal.rol == "x" };\n';
    const issues = loadIssues(
      files({
        "authz.cedar": cedar,
        "authz.cedarschema": schema,
        "policy.yaml":
          "version: 1\nengine:\n  cedar:\n    policies: authz.cedar\n    schema: authz.cedarschema\n",
      }),
    );
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({
      line: 2,
      col: 30,
      message: expect.stringMatching(/attribute `rol` on entity type `Agent` not found/),
      help: "did you mean `role`?",
    });
    // The same policy with the typo fixed loads.
    const fixed = files({
      "authz.cedar": cedar.replace(".rol ", ".role "),
      "authz.cedarschema": schema,
      "policy.yaml":
        "version: 1\nengine:\n  cedar:\n    policies: authz.cedar\n    schema: authz.cedarschema\n",
    });
    expect(
      Warden.fromFile(fixed).evaluate({ tool: "read_file", agent: { id: "a", role: "x" } }).verdict,
    ).toBe("allow");
  });

  it("a schema error names the .cedarschema file", () => {
    const issues = loadIssues(
      files({
        "authz.cedar": "permit (principal, action, resource);\n",
        "s.cedarschema": "entity Agent = { role: String };\nentity Server {\n",
        "policy.yaml": "version: 1\nengine: { cedar: { policies: authz.cedar, schema: s.cedarschema } }\n",
      }),
    );
    expect(issues[0].file).toMatch(/s\.cedarschema$/);
    expect(issues[0]).toMatchObject({
      line: 2,
      message: expect.stringMatching(/^cedar: .*unexpected end of input/),
    });
  });

  it("a missing file points at the policy's own key", () => {
    const issues = loadIssues(
      files({ "policy.yaml": "version: 1\nengine:\n  cedar:\n    policies: ./nope.cedar\n" }),
    );
    expect(issues).toEqual([
      expect.objectContaining({
        line: 4,
        col: 15,
        message: expect.stringMatching(/cannot read `.*nope\.cedar`: file not found/),
      }),
    ]);
  });

  it("a forbid that fails to evaluate denies (fail-closed), or flags under fail: open; a failing permit just does not permit", () => {
    const cedar = [
      '@id("big-amounts")',
      'forbid (principal, action == Action::"pay", resource) when { context.args.amount > 100 };',
      '@id("pay")',
      'permit (principal, action == Action::"pay", resource) when { context.args.to like "*@corp.example" };',
      "",
    ].join("\n");
    const closed = Warden.fromFile(
      files({
        "authz.cedar": cedar,
        "policy.yaml": "version: 1\nallow: [pay]\nengine: { cedar: { policies: authz.cedar } }\n",
      }),
    );
    const noAmount = { tool: "pay", args: { to: "x@corp.example" } };
    const decision = closed.evaluate(noAmount);
    expect(decision).toMatchObject({ verdict: "deny", rule: "cedar:big-amounts" });
    expect(decision.reason).toMatch(/failed to evaluate .*fail-closed/);
    // No `to`: the permit errs and is skipped; the forbid holds no opinion; the allow list decides.
    expect(closed.evaluate({ tool: "pay", args: { amount: 5 } })).toMatchObject({
      verdict: "allow",
      rule: "allow:pay",
    });
    expect(closed.evaluate({ tool: "pay", args: { amount: 500, to: "x@corp.example" } })).toMatchObject({
      verdict: "deny",
      rule: "cedar:big-amounts",
    });
    const open = Warden.fromFile(
      files({
        "authz.cedar": cedar,
        "policy.yaml": "version: 1\nfail: open\nallow: [pay]\nengine: { cedar: { policies: authz.cedar } }\n",
      }),
    );
    expect(open.evaluate(noAmount)).toMatchObject({ verdict: "flag", rule: "cedar:big-amounts" });
  });

  it("refuses templates and unknown engine keys", () => {
    expect(
      loadIssues(
        files({
          "authz.cedar": "permit (principal == ?principal, action, resource);\n",
          "policy.yaml": "version: 1\nengine: { cedar: { policies: authz.cedar } }\n",
        }),
      )[0].message,
    ).toMatch(/^cedar: .*template/);
    expect(() => Warden.fromObject({ version: 1, engine: { opa: {} } })).toThrow(/unknown key `opa`/);
  });

  it("keeps the same rule names when the file declares them twice", () => {
    const warden = Warden.fromFile(
      files({
        "authz.cedar":
          '@id("x")\npermit (principal, action == Action::"a", resource);\n@id("x")\npermit (principal, action == Action::"b", resource);\n',
        "policy.yaml": "version: 1\nengine: { cedar: { policies: authz.cedar } }\n",
      }),
    );
    expect(warden.evaluate({ tool: "a" }).rule).toBe("cedar:x");
    expect(warden.evaluate({ tool: "b" }).rule).toBe("cedar:x#1");
  });
});

describe("call data as Cedar values", () => {
  it.each([
    { value: "s", cedar: "s" },
    { value: 42, cedar: 42 },
    { value: 1.5, cedar: { __extn: { fn: "decimal", arg: "1.5" } } },
    { value: 1.23456, cedar: "1.23456" },
    { value: 2 ** 60, cedar: String(2 ** 60) },
    { value: [1, null, "a"], cedar: [1, "a"] },
    { value: { a: null, b: true }, cedar: { b: true } },
    // Escape keys would turn data into entity references: they are dropped.
    { value: { __entity: { type: "Agent", id: "root" }, x: 1 }, cedar: { x: 1 } },
    { value: { nested: { __extn: { fn: "ip", arg: "10.0.0.1" } } }, cedar: { nested: {} } },
  ])("$value", ({ value, cedar }) => {
    expect(toCedar(value, 0)).toEqual(cedar);
  });

  it("decides on decimals and ignores an argument that poses as an entity", () => {
    const warden = Warden.fromFile(
      files({
        "authz.cedar": [
          'permit (principal, action == Action::"tip", resource) when { context.args has amount && context.args.amount.lessThan(decimal("2.5")) };',
          'forbid (principal, action == Action::"tip", resource) when { context.args has who && context.args.who == Agent::"root" };',
          "",
        ].join("\n"),
        "policy.yaml": "version: 1\nengine: { cedar: { policies: authz.cedar } }\n",
      }),
    );
    expect(warden.evaluate({ tool: "tip", args: { amount: 1.25 } }).verdict).toBe("allow");
    expect(warden.evaluate({ tool: "tip", args: { amount: 3.5 } }).verdict).toBe("deny");
    expect(
      warden.evaluate({
        tool: "tip",
        args: { amount: 1.5, who: { __entity: { type: "Agent", id: "root" } } },
      }),
    ).toMatchObject({ verdict: "allow" });
  });
});
