import type { ToolMessage } from "@langchain/core/messages";
import { DynamicStructuredTool, StructuredTool, tool } from "@langchain/core/tools";
import { Command, interrupt, MemorySaver } from "@langchain/langgraph";
import { createReactAgent } from "@langchain/langgraph/prebuilt";
import { ChatOpenAI } from "@langchain/openai";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { guardTool, guardTools } from "../../src/adapters/langchain/index.js";
import { type E2E, e2eWarden, expectScriptedRun, hostTools } from "./harness.js";
import { refundStep } from "./script.js";
import { chatToolResults, startOpenAIServer } from "./servers/openai.js";

/** One tool of each kind LangChain.js offers: `tool()`, a `StructuredTool` subclass, a `DynamicStructuredTool`. */
function lcTools(host: ReturnType<typeof hostTools>) {
  class DeleteRecords extends StructuredTool {
    name = "delete_records";
    description = "Delete every row of a table";
    schema = z.object({ table: z.string() });
    async _call(input: { table: string }) {
      return host.delete_records(input);
    }
  }
  return [
    tool(host.web_fetch, {
      name: "web_fetch",
      description: "Fetch a page",
      schema: z.object({ url: z.string() }),
    }),
    new DeleteRecords(),
    new DynamicStructuredTool({
      name: "send_email",
      description: "Send an email",
      schema: z.object({ to: z.string(), subject: z.string(), body: z.string() }),
      func: host.send_email,
    }),
  ];
}

describe("toolwarden/langchain in a LangGraph.js agent against a local OpenAI-compatible server", () => {
  let e2e: E2E;
  let server: Awaited<ReturnType<typeof startOpenAIServer>>;

  beforeEach(async () => {
    e2e = await e2eWarden();
  });
  afterEach(async () => {
    await server.close();
    await e2e.cleanup();
  });

  const llm = () =>
    new ChatOpenAI({
      model: "scripted-gpt",
      apiKey: "test",
      maxRetries: 0,
      configuration: { baseURL: server.baseURL },
    });

  it("createReactAgent: guarded tools of every kind; refusals are error ToolMessages; one session per thread", async () => {
    server = await startOpenAIServer();
    const host = hostTools();
    const original = lcTools(host);
    const tools = guardTools(e2e.warden, original, { agent: { id: "support-bot" } });
    // The guarded tool is still the same kind of tool.
    expect(tools[1]).toBeInstanceOf(StructuredTool);
    expect(tools.map((t) => t.name)).toEqual(original.map((t) => t.name));

    const agent = createReactAgent({ llm: llm(), tools });
    const result = await agent.invoke(
      { messages: [{ role: "user", content: "Read the FAQ" }] },
      { configurable: { thread_id: "thread-42" }, recursionLimit: 12 },
    );
    const records = await e2e.audit();
    const { session } = expectScriptedRun({
      ran: host.ran,
      resultsPerRequest: server.requests.map((r) => chatToolResults(r.body)),
      finalText: String(result.messages.at(-1)?.content),
      records,
    });
    expect(session).toBe("thread-42");
    const toolMessages = result.messages.filter((m) => m.getType() === "tool") as ToolMessage[];
    expect(toolMessages.map((m) => m.status)).toEqual(["success", "error", "error"]);
  });

  it("a guarded tool called directly (no tool call) throws the refusal", async () => {
    server = await startOpenAIServer();
    const host = hostTools();
    const guarded = guardTool(e2e.warden, lcTools(host)[1] as StructuredTool);
    await expect(guarded.invoke({ table: "customers" })).rejects.toMatchObject({ code: "denied" });
    // Schema validation still runs first, so bad input never reaches the policy.
    await expect(guarded.invoke({ table: 42 } as never)).rejects.toThrow(/did not match expected schema/);
    expect(host.ran).toEqual([]);
    const records = await e2e.audit();
    expect(records.map((r) => [r.tool, r.verdict])).toEqual([["delete_records", "deny"]]);
  });

  it("an `ask` pauses the graph with interrupt(); resuming with approval runs the call once", async () => {
    server = await startOpenAIServer(refundStep);
    const host = hostTools();
    const refund = tool(host.refund, {
      name: "refund",
      description: "Refund an order",
      schema: z.object({ order: z.string(), amount: z.number() }),
    });
    const agent = createReactAgent({
      llm: llm(),
      tools: guardTools(e2e.warden, [refund], { interrupt }),
      checkpointer: new MemorySaver(),
    });
    const config = { configurable: { thread_id: "refund-thread" } };
    const paused = await agent.invoke(
      { messages: [{ role: "user", content: "Refund order A-1001" }] },
      config,
    );
    const [pending] = (paused as { __interrupt__?: Array<{ value: any }> }).__interrupt__ ?? [];
    expect(pending?.value).toMatchObject({ type: "toolwarden.approval", tool: "refund", rule: "ask:refund" });
    expect(host.ran).toEqual([]);

    const resumed = await agent.invoke(new Command({ resume: { approved: true } }), config);
    expect(host.ran).toEqual([{ tool: "refund", args: { order: "A-1001", amount: 250 } }]);
    expect(String(resumed.messages.at(-1)?.content)).toBe("Refund result: refunded 250 on A-1001");

    const records = await e2e.audit();
    expect(records.map((r) => [r.kind, r.verdict ?? r.approval?.status])).toEqual([
      ["decision", "ask"],
      ["decision", "ask"],
      ["approval", "approved"],
      ["decision", "allow"],
    ]);
    expect(records[0].approval?.id).toBe(pending?.value.approval);
    expect(records.every((r) => r.session === "refund-thread")).toBe(true);
  });

  it("resuming with a refusal tells the model a human denied it", async () => {
    server = await startOpenAIServer(refundStep);
    const host = hostTools();
    const refund = tool(host.refund, {
      name: "refund",
      description: "Refund",
      schema: z.object({ order: z.string(), amount: z.number() }),
    });
    const agent = createReactAgent({
      llm: llm(),
      tools: guardTools(e2e.warden, [refund], { interrupt }),
      checkpointer: new MemorySaver(),
    });
    const config = { configurable: { thread_id: "t-deny" } };
    await agent.invoke({ messages: [{ role: "user", content: "Refund order A-1001" }] }, config);
    const resumed = await agent.invoke(
      new Command({ resume: { approved: false, reason: "not eligible" } }),
      config,
    );
    expect(host.ran).toEqual([]);
    expect(String(resumed.messages.at(-1)?.content)).toContain("denied by langgraph:interrupt: not eligible");
  });
});
