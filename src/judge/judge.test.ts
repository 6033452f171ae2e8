import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startJudgeServer } from "../../test/judge/server.js";
import type { JudgeServer, Reply, Shown } from "../../test/judge/server.js";
import { JsonlAuditSink } from "../audit/jsonl-sink.js";
import type { AuditRecord } from "../audit/types.js";
import { PolicyLoadError } from "../core/index.js";
import { Warden } from "../gateway/warden.js";
import type { JudgedDecision } from "./apply.js";

const KEY_ENV = "TW_TEST_JUDGE_KEY";

/** The fake reviewer's answers, by tool. */
function reviewer(shown: Shown): Reply {
  switch (shown.call.tool) {
    case "write_file":
    case "post_note":
      return { answer: { consistent: true, confidence: 0.95, reasoning: "writing the report is the task" } };
    case "delete_repo":
      return {
        answer: {
          consistent: false,
          confidence: 0.9,
          reasoning: "deleting a repository is irreversible and not asked for",
        },
      };
    case "slow_tool":
      return { hang: true };
    case "odd_text":
      return { text: "Looks fine to me!" };
    case "odd_json":
      return { answer: { consistent: "yes", confidence: 2, reasoning: "sure" } };
    case "maybe_tool":
      return { answer: { consistent: true, confidence: 0.4, reasoning: "hard to say" } };
    case "broken_tool":
      return { status: 500 };
    default:
      return {
        answer: {
          consistent: shown.task.includes(shown.call.tool),
          confidence: 0.8,
          reasoning: "by the task",
        },
      };
  }
}

function policyFor(
  provider: "openai" | "anthropic",
  server: JudgeServer,
  judge: Record<string, unknown> = {},
) {
  return {
    version: 1,
    default: "deny",
    judge: {
      provider,
      url: server.url,
      model: "reviewer-1",
      api_key_env: KEY_ENV,
      timeout_ms: 5_000,
      min_confidence: 0.7,
      ...judge,
    },
    tools: { delete_repo: { risk: "critical" } },
    allow: ["read_docs"],
    ask: ["wire_money"],
    flag: ["post_*"],
    rules: [
      {
        name: "review-changes",
        when: {
          tool: ["write_*", "delete_*", "post_*", "wire_money", "slow_*", "odd_*", "maybe_*", "broken_*"],
        },
        verdict: "judge",
      },
    ],
  };
}

beforeAll(() => {
  process.env[KEY_ENV] = "sk-test";
});

describe.each(["openai", "anthropic"] as const)("judge through the real %s client", (provider) => {
  let server: JudgeServer;
  beforeAll(async () => {
    server = await startJudgeServer(provider, reviewer);
  });
  afterAll(() => server.close());

  const decide = async (
    warden: Warden,
    tool: string,
    args: Record<string, unknown> = {},
    task = "write the weekly report",
  ) => {
    const session = warden.session({ task });
    return (await warden.decide({ tool, args, session: session.id, agent: { id: "bot" } })) as JudgedDecision;
  };

  it.each([
    { tool: "write_file", verdict: "allow", rule: "judge", outcome: "consistent", finding: undefined },
    {
      tool: "delete_repo",
      verdict: "deny",
      rule: "judge",
      outcome: "inconsistent",
      finding: "judge.inconsistent",
    },
    { tool: "slow_tool", verdict: "deny", rule: "judge", outcome: "timeout", finding: "judge.timeout" },
    { tool: "odd_text", verdict: "deny", rule: "judge", outcome: "malformed", finding: "judge.malformed" },
    { tool: "odd_json", verdict: "deny", rule: "judge", outcome: "malformed", finding: "judge.malformed" },
    { tool: "maybe_tool", verdict: "deny", rule: "judge", outcome: "unsure", finding: "judge.unsure" },
    { tool: "broken_tool", verdict: "deny", rule: "judge", outcome: "error", finding: "judge.error" },
    // A flag rule also matched: the judge's allow does not hide it.
    { tool: "post_note", verdict: "flag", rule: "flag:post_*", outcome: "consistent", finding: undefined },
  ])("$tool: $outcome -> $verdict", async ({ tool, verdict, rule, outcome, finding }) => {
    // Only the hanging tool gets a short timeout: a slow machine must not turn answers into timeouts.
    const warden = Warden.fromObject(
      policyFor(provider, server, tool === "slow_tool" ? { timeout_ms: 300 } : {}),
    );
    const decision = await decide(warden, tool, { path: "/reports/week.md" });
    expect(decision).toMatchObject({ verdict, rule });
    expect(decision.judge).toMatchObject({ outcome, provider, model: "reviewer-1", cached: false });
    expect(decision.findings.map((f) => f.code)).toEqual(finding ? [finding] : []);
    expect(decision.matched).toContain("review-changes");
  });

  it("sends the task, the call and the answer schema in the provider's structured-output form", async () => {
    const warden = Warden.fromObject(policyFor(provider, server));
    const before = server.hits;
    await decide(
      warden,
      "write_file",
      { path: "/reports/q3.md", body: "numbers" },
      "summarize Q3 into /reports",
    );
    expect(server.hits).toBe(before + 1);
    const body = server.bodies.at(-1);
    expect(body.model).toBe("reviewer-1");
    if (provider === "openai") {
      expect(body.response_format).toMatchObject({
        type: "json_schema",
        json_schema: { name: "judgement", strict: true },
      });
      expect(body.messages[0].content).toMatch(/blast radius/);
    } else {
      expect(body.tool_choice).toEqual({ type: "tool", name: "judgement" });
      expect(body.system).toMatch(/blast radius/);
    }
    const shown = JSON.parse(body.messages.find((m: { role: string }) => m.role === "user").content) as Shown;
    expect(shown.task).toBe("summarize Q3 into /reports");
    expect(shown.call).toMatchObject({
      tool: "write_file",
      agent: "bot",
      arguments: { path: "/reports/q3.md", body: "numbers" },
    });
  });

  it("falls back to the configured verdict: ask makes a pending approval, allow lets it run", async () => {
    const asking = Warden.fromObject(policyFor(provider, server, { fallback: "ask", timeout_ms: 300 }));
    const timedOut = await decide(asking, "slow_tool");
    expect(timedOut).toMatchObject({ verdict: "ask", rule: "judge" });
    expect(timedOut.approval).toBeTypeOf("string");
    const allowing = Warden.fromObject(policyFor(provider, server, { fallback: "allow" }));
    expect(await decide(allowing, "maybe_tool")).toMatchObject({
      verdict: "allow",
      judge: { outcome: "unsure" },
    });
    // An inconsistent call is denied whatever the fallback says.
    expect(await decide(allowing, "delete_repo")).toMatchObject({
      verdict: "deny",
      judge: { outcome: "inconsistent" },
    });
  });

  it("caches answers per (task, call): the same call asks the model once, a new task or argument asks again", async () => {
    const warden = Warden.fromObject(policyFor(provider, server));
    const before = server.hits;
    const first = await decide(warden, "write_file", { path: "/a" });
    const second = await decide(warden, "write_file", { path: "/a" });
    expect(first.judge?.cached).toBe(false);
    expect(second.judge?.cached).toBe(true);
    expect(second.verdict).toBe("allow");
    expect(server.hits).toBe(before + 1);
    await decide(warden, "write_file", { path: "/b" });
    await decide(warden, "write_file", { path: "/a" }, "a different task");
    expect(server.hits).toBe(before + 3);
    // Failures are not cached: a timeout is asked again next time.
    const impatient = Warden.fromObject(policyFor(provider, server, { timeout_ms: 300 }));
    await decide(impatient, "slow_tool");
    await decide(impatient, "slow_tool");
    expect(server.hits).toBe(before + 5);
  });

  it("shares one round trip between identical concurrent calls", async () => {
    const warden = Warden.fromObject(policyFor(provider, server));
    const before = server.hits;
    const session = warden.session({ task: "concurrency" });
    const call = { tool: "write_file", args: { path: "/same" }, session: session.id };
    const decisions = await Promise.all([warden.decide(call), warden.decide(call), warden.decide(call)]);
    expect(decisions.map((d) => d.verdict)).toEqual(["allow", "allow", "allow"]);
    expect(server.hits).toBe(before + 1);
  });
});

describe("judge semantics", () => {
  let server: JudgeServer;
  beforeAll(async () => {
    server = await startJudgeServer("openai", reviewer);
  });
  afterAll(() => server.close());

  it("evaluate (pure) ranks a judge rule as ask and names it, without asking the model", () => {
    const warden = Warden.fromObject(policyFor("openai", server));
    const before = server.hits;
    const decision = warden.evaluate({ tool: "write_file", args: {} });
    expect(decision).toMatchObject({
      verdict: "ask",
      rule: "review-changes",
      reason: "rule `review-changes` needs the judge's review",
    });
    expect(server.hits).toBe(before);
  });

  it("a plain ask outranks a judge rule of the same rank: a human decides, the model is not asked", async () => {
    const warden = Warden.fromObject(policyFor("openai", server));
    const before = server.hits;
    const decision = (await warden.decide({ tool: "wire_money", args: { amount: 5 } })) as JudgedDecision;
    expect(decision).toMatchObject({ verdict: "ask", rule: "ask:wire_money" });
    expect(decision.matched).toEqual(["ask:wire_money", "review-changes"]);
    expect(decision.judge).toBeUndefined();
    expect(server.hits).toBe(before);
  });

  it("for: undecided judges calls nothing else decided, instead of the default", async () => {
    const warden = Warden.fromObject(policyFor("openai", server, { for: "undecided" }));
    expect(warden.evaluate({ tool: "plan_trip" })).toMatchObject({ verdict: "ask", rule: "judge:undecided" });
    const session = warden.session({ task: "plan_trip to Lisbon" });
    expect(await warden.decide({ tool: "plan_trip", session: session.id })).toMatchObject({
      verdict: "allow",
      rule: "judge",
    });
    expect(await warden.decide({ tool: "book_flight", session: session.id })).toMatchObject({
      verdict: "deny",
      rule: "judge",
    });
    // Something decided: no judge.
    expect(await warden.decide({ tool: "read_docs" })).toMatchObject({
      verdict: "allow",
      rule: "allow:read_docs",
    });
    const never = Warden.fromObject(policyFor("openai", server));
    expect(await never.decide({ tool: "plan_trip" })).toMatchObject({ verdict: "deny", rule: null });
  });

  it("a missing API key falls back without a request", async () => {
    const warden = Warden.fromObject(policyFor("openai", server, { api_key_env: "TW_TEST_NO_SUCH_KEY" }));
    const before = server.hits;
    const decision = (await warden.decide({ tool: "write_file" })) as JudgedDecision;
    expect(decision).toMatchObject({ verdict: "deny", judge: { outcome: "no_key" } });
    expect(decision.reason).toMatch(/TW_TEST_NO_SUCH_KEY/);
    expect(server.hits).toBe(before);
  });

  it("judges a scope's calls against the scope's task", async () => {
    const warden = Warden.fromObject(policyFor("openai", server, { for: "undecided" }));
    const session = warden.session({ task: "anything" });
    const decision = await warden.runInSession(session, () =>
      warden.scope({ task: "export_csv of the sales table" }, () =>
        warden.decide({ tool: "export_csv", session: session.id }),
      ),
    );
    expect(decision.verdict).toBe("allow");
    const shown = JSON.parse(server.bodies.at(-1).messages[1].content) as Shown;
    expect(shown.task).toBe("export_csv of the sales table");
  });

  it("writes every judgement into the decision's audit record", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tw-judge-"));
    try {
      const path = join(dir, "audit.jsonl");
      const audit = await JsonlAuditSink.open({ path, unsigned: true, durability: "write" });
      const warden = Warden.fromObject(policyFor("openai", server), { audit });
      const session = warden.session({ task: "write the weekly report" });
      await warden.decide({ tool: "write_file", args: { path: "/r" }, session: session.id });
      await warden.decide({ tool: "delete_repo", args: { name: "core" }, session: session.id });
      await warden.close();
      const records = (await readFile(path, "utf8"))
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line) as AuditRecord);
      expect(records.map((r) => [r.tool, r.verdict, r.rule])).toEqual([
        ["write_file", "allow", "judge"],
        ["delete_repo", "deny", "judge"],
      ]);
      expect(records[0].data?.judge).toMatchObject({
        outcome: "consistent",
        confidence: 0.95,
        provider: "openai",
        cached: false,
      });
      expect(records[1].data?.judge).toMatchObject({
        outcome: "inconsistent",
        reasoning: expect.stringMatching(/irreversible/),
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses a policy with `verdict: judge` but no `judge:`, naming the line", () => {
    const text = "version: 1\nrules:\n  - name: r\n    verdict: judge\n";
    expect(() => Warden.fromText(text, { file: "p.yaml" })).toThrow(PolicyLoadError);
    try {
      Warden.fromText(text, { file: "p.yaml" });
    } catch (error) {
      expect((error as PolicyLoadError).issues[0]).toMatchObject({
        line: 4,
        message: expect.stringMatching(/no `judge:`/),
      });
    }
  });

  it("refuses an unknown judge key and a bad provider", () => {
    expect(() =>
      Warden.fromObject({ version: 1, judge: { provider: "openai", model: "m", timeout: 5 } }),
    ).toThrow(/timeout/);
    expect(() => Warden.fromObject({ version: 1, judge: { provider: "gemini", model: "m" } })).toThrow(
      PolicyLoadError,
    );
  });
});
