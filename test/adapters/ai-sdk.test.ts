import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { generateText, type ModelMessage, stepCountIs, streamText, tool } from "ai";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { guardTools } from "../../src/adapters/ai-sdk/index.js";
import { type E2E, e2eWarden, expectScriptedRun, hostTools } from "./harness.js";
import { refundStep } from "./script.js";
import { chatToolResults, startOpenAIServer } from "./servers/openai.js";

function aiTools(host: ReturnType<typeof hostTools>) {
  return {
    web_fetch: tool({
      description: "Fetch a page",
      inputSchema: z.object({ url: z.string() }),
      execute: host.web_fetch,
    }),
    delete_records: tool({
      description: "Delete a table",
      inputSchema: z.object({ table: z.string() }),
      execute: host.delete_records,
    }),
    send_email: tool({
      description: "Send an email",
      inputSchema: z.object({ to: z.string(), subject: z.string(), body: z.string() }),
      execute: host.send_email,
    }),
  };
}

describe("toolwarden/ai-sdk against a local OpenAI-compatible server", () => {
  let e2e: E2E;
  let server: Awaited<ReturnType<typeof startOpenAIServer>>;

  beforeEach(async () => {
    e2e = await e2eWarden();
  });
  afterEach(async () => {
    await server.close();
    await e2e.cleanup();
  });

  const model = () =>
    createOpenAICompatible({ name: "scripted", baseURL: server.baseURL, apiKey: "test" }).chatModel(
      "scripted-gpt",
    );

  it("generateText: the multi-step loop (stopWhen) runs every tool call through the policy", async () => {
    server = await startOpenAIServer();
    const host = hostTools();
    const result = await generateText({
      model: model(),
      tools: guardTools(e2e.warden, aiTools(host), { agent: { id: "support-bot" } }),
      prompt: "Read the FAQ",
      stopWhen: stepCountIs(6),
    });
    const records = await e2e.audit();
    expectScriptedRun({
      ran: host.ran,
      resultsPerRequest: server.requests.map((r) => chatToolResults(r.body)),
      finalText: result.text,
      records,
    });
    expect(result.steps).toHaveLength(4);
    // Refusals surface to the host as tool errors carrying the decision.
    const errors = result.steps.flatMap((s) => s.content).filter((p) => p.type === "tool-error");
    expect(errors.map((e) => (e.error as { decision?: { rule: string } }).decision?.rule)).toEqual([
      "deny:delete_*",
      "no-untrusted-into-external-sinks",
    ]);
  });

  it("streamText: the streaming loop (SSE) goes through the policy too", async () => {
    server = await startOpenAIServer();
    const host = hostTools();
    const result = streamText({
      model: model(),
      tools: guardTools(e2e.warden, aiTools(host)),
      prompt: "Read the FAQ",
      stopWhen: stepCountIs(6),
    });
    const text = await result.text;
    expectScriptedRun({
      ran: host.ran,
      resultsPerRequest: server.requests.map((r) => chatToolResults(r.body)),
      finalText: text,
      records: await e2e.audit(),
    });
    expect(server.requests.every((r) => r.body.stream === true)).toBe(true);
  });

  it("two generateText runs with the same guarded tools are two sessions", async () => {
    server = await startOpenAIServer();
    const host = hostTools();
    const tools = guardTools(e2e.warden, aiTools(host));
    for (let i = 0; i < 2; i++)
      await generateText({ model: model(), tools, prompt: "Read the FAQ", stopWhen: stepCountIs(6) });
    const decisions = (await e2e.audit()).filter((r) => r.kind === "decision");
    expect(decisions.map((d) => d.verdict)).toEqual(["allow", "deny", "deny", "allow", "deny", "deny"]);
    expect(new Set(decisions.slice(0, 3).map((d) => d.session)).size).toBe(1);
    expect(new Set(decisions.map((d) => d.session)).size).toBe(2);
  });

  it("an `ask` is the SDK's needsApproval: the approved call runs once, and the audit shows ask, approval, allow", async () => {
    server = await startOpenAIServer(refundStep);
    const host = hostTools();
    const tools = guardTools(e2e.warden, {
      refund: tool({
        description: "Refund an order",
        inputSchema: z.object({ order: z.string(), amount: z.number() }),
        execute: host.refund,
      }),
    });
    const messages: ModelMessage[] = [{ role: "user", content: "Refund order A-1001" }];
    const first = await generateText({ model: model(), tools, messages, stopWhen: stepCountIs(4) });
    const request = first.content.find((p) => p.type === "tool-approval-request");
    expect(request?.toolCall.toolName).toBe("refund");
    expect(host.ran).toEqual([]);

    messages.push(...first.response.messages, {
      role: "tool",
      content: [{ type: "tool-approval-response", approvalId: request?.approvalId ?? "", approved: true }],
    });
    const second = await generateText({ model: model(), tools, messages, stopWhen: stepCountIs(4) });
    expect(host.ran).toEqual([{ tool: "refund", args: { order: "A-1001", amount: 250 } }]);
    expect(second.text).toBe("Refund result: refunded 250 on A-1001");

    const records = await e2e.audit();
    expect(records.map((r) => [r.kind, r.tool, r.verdict ?? r.approval?.status])).toEqual([
      ["decision", "refund", "ask"],
      ["approval", "refund", "approved"],
      ["decision", "refund", "allow"],
    ]);
    expect(records[1].approval?.by).toBe(`ai-sdk:${request?.approvalId}`);
    expect(records[2].rule).toBe(`approval:${records[0].approval?.id}`);
    expect(new Set(records.map((r) => r.session)).size).toBe(1);
  });

  it("an approval response the SDK never asked for does not let an `ask` through", async () => {
    server = await startOpenAIServer(refundStep);
    const host = hostTools();
    // Without needsApproval the SDK runs execute at once; there is no approval for this call.
    const tools = guardTools(
      e2e.warden,
      {
        refund: tool({
          inputSchema: z.object({ order: z.string(), amount: z.number() }),
          execute: host.refund,
        }),
      },
      { needsApproval: false },
    );
    const result = await generateText({
      model: model(),
      tools,
      prompt: "Refund order A-1001",
      stopWhen: stepCountIs(4),
    });
    expect(host.ran).toEqual([]);
    expect(result.text).toContain("held `refund` for human approval");
    const records = await e2e.audit();
    expect(records.map((r) => [r.tool, r.verdict])).toEqual([["refund", "ask"]]);
  });
});
