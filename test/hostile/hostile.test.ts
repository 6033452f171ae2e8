import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { JsonlAuditSink } from "../../src/audit/index.js";
import type { Call } from "../../src/core/index.js";
import { evaluateCall, Warden } from "../../src/gateway/index.js";
import { compilePolicyText } from "../../src/policy/index.js";
import { referenceFor, summarize } from "../properties/harness.js";
import { HOSTILE_CASES, HOSTILE_POLICY, hostileSetup } from "./inputs.js";

/**
 * Hostile input never crashes, never hangs and never pollutes a prototype: every case of
 * inputs.ts is decided as expected (malformed input denied with its reason), and the reference
 * evaluator agrees. Times are measured by measure.ts, not asserted here. The cases that take
 * seconds by design (megabytes walked by every analyzer) run with TW_HOSTILE_HEAVY=1.
 */
const HEAVY = process.env.TW_HOSTILE_HEAVY === "1";
const heavy = (name: string) => /MiB|99,999/.test(name);
const { policy, session } = hostileSetup();

function pollution(): unknown[] {
  const probe = {} as Record<string, unknown>;
  return [probe.polluted, probe.isAdmin, probe.role, Object.hasOwn(Object.prototype, "polluted")];
}

afterEach(() => {
  expect(pollution(), "Object.prototype was polluted").toEqual([undefined, undefined, undefined, false]);
});

describe("hostile inputs: the decision", () => {
  it.each(HOSTILE_CASES.filter((c) => HEAVY || !heavy(c.name)).map((c) => [c.name, c] as const))(
    "%s",
    (_, c) => {
      const call = c.call();
      const s = session();
      const decision = evaluateCall(policy, call, s);
      expect([decision.verdict, decision.rule], decision.reason).toEqual([c.expect.verdict, c.expect.rule]);
      if (c.expect.reason) expect(decision.reason).toMatch(c.expect.reason);
      const reference = summarize(referenceFor(policy, call, s));
      expect([reference.verdict, reference.rule]).toEqual([decision.verdict, decision.rule]);
    },
  );
});

describe("hostile keys through the whole gateway", () => {
  const dir = mkdtempSync(join(tmpdir(), "tw-hostile-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("decide, audit, record outputs and user input with `__proto__`/`constructor`/`prototype` everywhere", async () => {
    const audit = await JsonlAuditSink.open({ path: join(dir, "audit.jsonl"), unsigned: true });
    const warden = new Warden(compilePolicyText(`${HOSTILE_POLICY}audit: { args: full }\n`, "hostile.yaml"), {
      audit,
    });
    const payloads = [
      '{"__proto__": {"isAdmin": true, "polluted": 1}}',
      '{"constructor": {"prototype": {"isAdmin": true, "polluted": 1}}}',
      '{"prototype": {"polluted": 1}, "a": [{"__proto__": {"polluted": 1}}]}',
    ];
    const session = warden.session({ id: "s" });
    session.input(JSON.parse(payloads[0]), { labels: ["user"] });
    for (const payload of payloads) {
      const call: Call = {
        tool: "admin_panel",
        session: "s",
        args: JSON.parse(payload),
        agent: JSON.parse('{"__proto__": {"role": "admin"}}'),
      };
      const decision = await warden.decide(call);
      expect([decision.verdict, decision.rule]).toEqual(["deny", null]);
      warden.recordOutput({ tool: "t", session: "s" }, JSON.parse(payload), session);
      const allowed = await warden.decide({ tool: "t", session: "s", args: JSON.parse(payload) });
      expect(allowed.verdict).toBe("allow");
    }
    await warden.close();
    const lines = readFileSync(join(dir, "audit.jsonl"), "utf8").trim().split("\n");
    expect(lines.length).toBeGreaterThanOrEqual(6);
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
  });
});

describe("regular expressions are RE2: linear time, no catastrophic backtracking", () => {
  it("`(a+)+$` loads (RE2 has no backtracking) and a near miss is decided", () => {
    const p = compilePolicyText(
      'version: 1\ndefault: allow\nrules:\n  - { name: r, when: { args.s: { regex: "(a+)+$" } }, verdict: deny }\n',
    );
    for (const n of [1_000, 10_000, 100_000]) {
      expect(evaluateCall(p, { tool: "t", args: { s: `${"a".repeat(n)}!` } }, undefined).rule).toBeNull();
      expect(evaluateCall(p, { tool: "t", args: { s: `!${"a".repeat(n)}` } }, undefined).rule).toBe("r");
    }
  });

  it.each([
    ["a backreference", "(a)\\1"],
    ["a lookahead", "a(?=b)"],
    ["a lookbehind", "(?<=a)b"],
    ["a possessive quantifier", "a*+"],
  ])("backtracking-only syntax is refused at load: %s", (_, pattern) => {
    const yaml = `'${pattern}'`;
    const rule = `version: 1\nrules:\n  - { name: r, when: { args.s: { regex: ${yaml} } }, verdict: deny }\n`;
    expect(() => compilePolicyText(rule)).toThrow(/bad regex/);
    expect(() => compilePolicyText(`version: 1\ntools:\n  t: { args: { s: { regex: ${yaml} } } }\n`)).toThrow(
      /invalid regular expression/,
    );
  });
});
