import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { JsonlAuditSink } from "../audit/jsonl-sink.js";
import { PolicyDeniedError, ToolwardenError } from "../core/index.js";
import type { Call } from "../core/index.js";
import { Warden } from "../gateway/warden.js";
import type { PlannedCall, PlanStep } from "./plan.js";

const policy = {
  version: 1,
  default: "deny",
  allow: ["read_file", "summarize", "send_email", "list_dir"],
  rules: [
    {
      name: "no-secrets-out",
      when: { tool: "send_email", "args.body": { contains: "secret" } },
      verdict: "deny",
    },
  ],
};

const STEPS: PlanStep[] = [
  { tool: "read_file", args: { path: { prefix: "/tmp/" } } },
  { tool: "summarize" },
  { tool: "send_email", args: { to: "me@corp.example" } },
];

/** A Warden whose clock the test moves. */
function setup(options: { planKey?: string } = {}) {
  const clock = { now: 1_000_000 };
  const warden = Warden.fromObject(policy, { now: () => clock.now, ...options });
  return { warden, clock };
}

const read = (token: string, path = "/tmp/notes.txt"): PlannedCall => ({
  tool: "read_file",
  args: { path },
  token,
});
const summarize = (token: string): PlannedCall => ({ tool: "summarize", args: { text: "..." }, token });
const email = (token: string, to = "me@corp.example", body = "summary"): PlannedCall => ({
  tool: "send_email",
  args: { to, body },
  token,
});

async function verdicts(warden: Warden, calls: Call[]): Promise<Array<[string, string | null]>> {
  const out: Array<[string, string | null]> = [];
  for (const call of calls) {
    const d = await warden.decide(call);
    out.push([d.verdict, d.rule]);
  }
  return out;
}

describe("plans with authority tokens", () => {
  it("issues a signed plan with one token per step, and lets the steps run in order", async () => {
    const { warden } = setup();
    const plan = warden.plan(STEPS, { ttlMs: 60_000 });
    expect(plan.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(plan.signature).toMatch(/^[\w-]{43}$/);
    expect(plan.tokens).toHaveLength(3);
    expect(new Set(plan.tokens).size).toBe(3);
    expect(plan.expiresAt - plan.issuedAt).toBe(60_000);
    const [t1, t2, t3] = plan.tokens;
    expect(await verdicts(warden, [read(t1), summarize(t2), email(t3)])).toEqual([
      ["allow", "allow:read_file"],
      ["allow", "allow:summarize"],
      ["allow", "allow:send_email"],
    ]);
  });

  it.each([
    {
      name: "replay: a spent token",
      calls: (t: string[]) => [read(t[0]), read(t[0])],
      expected: ["allow:read_file", "plan.replay"],
    },
    {
      name: "out of order: a later step first",
      calls: (t: string[]) => [read(t[0]), email(t[2])],
      expected: ["allow:read_file", "plan.order"],
    },
    {
      name: "out of order: skipping the first step",
      calls: (t: string[]) => [summarize(t[1])],
      expected: ["plan.order"],
    },
    {
      name: "replay: going back to a spent step",
      calls: (t: string[]) => [read(t[0]), summarize(t[1]), { ...read(t[0]), args: { path: "/tmp/other" } }],
      expected: ["allow:read_file", "allow:summarize", "plan.replay"],
    },
    {
      name: "outside: a token used for another tool",
      calls: (t: string[]) => [{ tool: "list_dir", args: { path: "/tmp" }, token: t[0] }],
      expected: ["plan.outside"],
    },
    {
      name: "args: outside the step's constraints",
      calls: (t: string[]) => [read(t[0], "/etc/passwd")],
      expected: ["plan.args"],
    },
    {
      name: "args: a fixed value",
      calls: (t: string[]) => [read(t[0]), summarize(t[1]), email(t[2], "mallory@evil.example")],
      expected: ["allow:read_file", "allow:summarize", "plan.args"],
    },
    {
      name: "tampered: an altered signature",
      calls: (t: string[]) => [read(`${t[0].slice(0, -2)}${t[0].endsWith("AA") ? "BB" : "AA"}`)],
      expected: ["plan.tampered"],
    },
    {
      name: "tampered: another step's number on a token",
      calls: (t: string[]) => [summarize(t[0].replace(/\.0\./, ".1."))],
      expected: ["plan.tampered"],
    },
    {
      name: "tampered: a token this warden never issued",
      calls: () => [read("twp1.00000000-0000-4000-8000-000000000000.0.abc")],
      expected: ["plan.tampered"],
    },
  ])("denies $name", async ({ calls, expected }) => {
    const { warden } = setup();
    const plan = warden.plan(STEPS);
    const results = await verdicts(warden, calls(plan.tokens));
    expect(results.map(([, rule]) => rule)).toEqual(expected);
    for (const [i, rule] of expected.entries())
      if (rule.startsWith("plan.")) expect(results[i][0]).toBe("deny");
  });

  it("explains a refusal with a finding", async () => {
    const { warden } = setup();
    const plan = warden.plan(STEPS);
    const decision = await warden.decide(email(plan.tokens[2]));
    expect(decision.findings).toEqual([
      {
        code: "plan.order",
        message: expect.stringMatching(/step 3 \(`send_email`\) comes before step 1 \(`read_file`\)/),
        verdict: "deny",
      },
    ]);
  });

  it("denies every token once the plan expires", async () => {
    const { warden, clock } = setup();
    const plan = warden.plan(STEPS, { ttlMs: 5_000 });
    expect((await warden.decide(read(plan.tokens[0]))).verdict).toBe("allow");
    clock.now += 5_001;
    const decision = await warden.decide(summarize(plan.tokens[1]));
    expect(decision).toMatchObject({ verdict: "deny", rule: "plan.expired" });
  });

  it("max_calls lets a step run that many times, then counts as a replay", async () => {
    const { warden } = setup();
    const plan = warden.plan([{ tool: "read_file", max_calls: 2 }, { tool: "summarize" }]);
    const [t1] = plan.tokens;
    expect(await verdicts(warden, [read(t1, "/a"), read(t1, "/b"), read(t1, "/c")])).toEqual([
      ["allow", "allow:read_file"],
      ["allow", "allow:read_file"],
      ["deny", "plan.replay"],
    ]);
    // Uses left, but a later step ran: the plan does not go back.
    const again = warden.plan([{ tool: "read_file", max_calls: 2 }, { tool: "summarize" }]);
    expect(
      await verdicts(warden, [read(again.tokens[0]), summarize(again.tokens[1]), read(again.tokens[0])]),
    ).toEqual([
      ["allow", "allow:read_file"],
      ["allow", "allow:summarize"],
      ["deny", "plan.order"],
    ]);
  });

  it("does not spend a token on a call the policy refuses, and never widens the policy", async () => {
    const { warden } = setup();
    const plan = warden.plan([{ tool: "send_email" }, { tool: "delete_everything" }]);
    const refused = await warden.decide(email(plan.tokens[0], "me@corp.example", "the secret plan"));
    expect(refused).toMatchObject({ verdict: "deny", rule: "no-secrets-out" });
    expect(await warden.decide(email(plan.tokens[0]))).toMatchObject({ verdict: "allow" });
    // In the plan, but the policy's default denies it.
    expect(
      await warden.decide({ tool: "delete_everything", token: plan.tokens[1] } as PlannedCall),
    ).toMatchObject({ verdict: "deny", rule: null });
  });

  it("spends a single-use token once even when two calls race for it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tw-plans-"));
    try {
      const audit = await JsonlAuditSink.open({
        path: join(dir, "audit.jsonl"),
        unsigned: true,
        durability: "write",
      });
      const warden = Warden.fromObject(policy, { audit });
      const plan = warden.plan(STEPS);
      const results = await Promise.all([
        warden.decide(read(plan.tokens[0])),
        warden.decide(read(plan.tokens[0])),
      ]);
      expect(results.map((d) => d.rule).sort()).toEqual(["allow:read_file", "plan.replay"]);
      await warden.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("evaluate checks tokens without spending them", async () => {
    const { warden } = setup();
    const plan = warden.plan(STEPS);
    expect(warden.evaluate(read(plan.tokens[0])).verdict).toBe("allow");
    expect(warden.evaluate(read(plan.tokens[0])).verdict).toBe("allow");
    expect(warden.evaluate(summarize(plan.tokens[1]))).toMatchObject({ verdict: "deny", rule: "plan.order" });
    expect((await warden.decide(read(plan.tokens[0]))).verdict).toBe("allow");
    expect(warden.evaluate(read(plan.tokens[0]))).toMatchObject({ verdict: "deny", rule: "plan.replay" });
  });

  it("ends a plan: its tokens stop working", async () => {
    const { warden } = setup();
    const plan = warden.plan(STEPS);
    warden.endPlan(plan);
    expect(await warden.decide(read(plan.tokens[0]))).toMatchObject({
      verdict: "deny",
      rule: "plan.tampered",
    });
  });

  it("refuses malformed steps when the plan is declared", () => {
    const { warden } = setup();
    const invalid = (steps: unknown, options = {}) => {
      try {
        warden.plan(steps as PlanStep[], options);
      } catch (error) {
        return error instanceof ToolwardenError ? `${error.code}: ${error.message}` : String(error);
      }
      return "accepted";
    };
    expect(invalid([])).toMatch(/^plan_invalid: a plan is a list/);
    expect(invalid([{ tool: "" }])).toMatch(/^plan_invalid: plan step 1: `tool`/);
    expect(invalid([{ tool: "a", max_calls: 0 }])).toMatch(/max_calls/);
    expect(invalid([{ tool: "a", args: { path: { starts: "/tmp" } } }])).toMatch(
      /^plan_invalid: plan step 1: .*starts/,
    );
    expect(invalid([{ tool: "a" }], { ttlMs: -1 })).toMatch(/ttlMs/);
  });
});

describe("runInPlan and session plans", () => {
  it("follows the plan without tokens inside runInPlan, and names what breaks it", async () => {
    const { warden } = setup();
    const plan = warden.plan(STEPS);
    const results = await warden.runInPlan(plan, () =>
      verdicts(warden, [
        { tool: "summarize" },
        { tool: "read_file", args: { path: "/tmp/a" } },
        { tool: "list_dir", args: { path: "/tmp" } },
        { tool: "read_file", args: { path: "/tmp/b" } },
        { tool: "summarize" },
        { tool: "send_email", args: { to: "me@corp.example", body: "hi" } },
      ]),
    );
    expect(results.map(([, rule]) => rule)).toEqual([
      "plan.order",
      "allow:read_file",
      "plan.outside",
      "plan.replay",
      "allow:summarize",
      "allow:send_email",
    ]);
    // Outside the block the plan does not apply.
    expect((await warden.decide({ tool: "list_dir" })).verdict).toBe("allow");
  });

  it("denies every call of a tampered plan", async () => {
    const { warden } = setup();
    const plan = warden.plan(STEPS);
    const widened = { ...plan, steps: [{ tool: "read_file" }, ...plan.steps.slice(1)] };
    const decision = await warden.runInPlan(widened, () =>
      warden.decide({ tool: "read_file", args: { path: "/etc/passwd" } }),
    );
    expect(decision).toMatchObject({ verdict: "deny", rule: "plan.tampered" });
    const resigned = { ...plan, expiresAt: plan.expiresAt + 3_600_000 };
    expect(await warden.runInPlan(resigned, () => warden.decide(read("")))).toMatchObject({
      rule: "plan.tampered",
    });
    // A plan signed with another key is not this warden's.
    const other = setup({ planKey: "another key" }).warden.plan(STEPS);
    expect(
      await warden.runInPlan(other, () => warden.decide({ tool: "read_file", args: { path: "/tmp/x" } })),
    ).toMatchObject({ rule: "plan.tampered" });
  });

  it("binds a plan to its session: the session's calls must follow it, token or not", async () => {
    const { warden } = setup();
    const plan = warden.plan(STEPS, { session: "s1" });
    expect(await warden.decide({ tool: "list_dir", session: "s1" })).toMatchObject({
      verdict: "deny",
      rule: "plan.outside",
    });
    expect(await warden.decide({ tool: "read_file", args: { path: "/tmp/a" }, session: "s1" })).toMatchObject(
      { verdict: "allow" },
    );
    // Another session is not governed by it, and cannot use its tokens.
    expect((await warden.decide({ tool: "list_dir", session: "s2" })).verdict).toBe("allow");
    expect(await warden.decide({ ...summarize(plan.tokens[1]), session: "s2" })).toMatchObject({
      rule: "plan.outside",
    });
    warden.endPlan(plan.id);
    expect((await warden.decide({ tool: "list_dir", session: "s1" })).verdict).toBe("allow");
  });

  it("stops wrapped tools that leave the plan", async () => {
    const { warden } = setup();
    const ran: string[] = [];
    const readFile = warden.wrap("read_file", async (args: { path: string }) => ran.push(args.path));
    const sendEmail = warden.wrap("send_email", async (args: { to: string; body: string }) =>
      ran.push(args.to),
    );
    const plan = warden.plan(STEPS);
    await warden.runInPlan(plan, async () => {
      await readFile({ path: "/tmp/report" });
      const refused = await sendEmail({ to: "me@corp.example", body: "x" }).catch((e) => e);
      expect(refused).toBeInstanceOf(PolicyDeniedError);
      expect((refused as PolicyDeniedError).decision.rule).toBe("plan.order");
    });
    expect(ran).toEqual(["/tmp/report"]);
  });
});
