import { fileURLToPath } from "node:url";
import { Agent, MCPServerStdio, OpenAIResponsesModel, run, setTracingDisabled, tool } from "@openai/agents";
import OpenAI from "openai";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { guardAgent } from "../../src/adapters/openai-agents/index.js";
import { type E2E, e2eWarden, expectScriptedRun, hostTools } from "./harness.js";
import { refundStep } from "./script.js";
import { responsesToolResults, startOpenAIServer } from "./servers/openai.js";

function agentTools(host: ReturnType<typeof hostTools>) {
  return {
    web_fetch: tool({
      name: "web_fetch",
      description: "Fetch a page",
      parameters: z.object({ url: z.string() }),
      execute: host.web_fetch,
    }),
    delete_records: tool({
      name: "delete_records",
      description: "Delete a table",
      parameters: z.object({ table: z.string() }),
      execute: host.delete_records,
    }),
    send_email: tool({
      name: "send_email",
      description: "Send an email",
      parameters: z.object({ to: z.string(), subject: z.string(), body: z.string() }),
      execute: host.send_email,
    }),
  };
}

describe("toolwarden/openai-agents against a local Responses API server", () => {
  let e2e: E2E;
  let server: Awaited<ReturnType<typeof startOpenAIServer>>;

  beforeAll(() => setTracingDisabled(true));
  beforeEach(async () => {
    e2e = await e2eWarden();
  });
  afterEach(async () => {
    await server.close();
    await e2e.cleanup();
  });

  const model = () =>
    new OpenAIResponsesModel(
      new OpenAI({ apiKey: "test", baseURL: server.baseURL, maxRetries: 0 }),
      "scripted-gpt",
    );

  it("run(): the Agents SDK loop calls guarded function tools; one run is one session", async () => {
    server = await startOpenAIServer();
    const host = hostTools();
    const t = agentTools(host);
    const agent = new Agent({
      name: "support",
      instructions: "Help.",
      model: model(),
      tools: [t.web_fetch, t.delete_records, t.send_email],
    });
    const guarded = guardAgent(e2e.warden, agent, { agent: { id: "support-bot" } });
    expect(guarded).not.toBe(agent);
    const result = await run(guarded, "Read the FAQ");
    const records = await e2e.audit();
    expectScriptedRun({
      ran: host.ran,
      resultsPerRequest: server.requests.map((r) => responsesToolResults(r.body)),
      finalText: String(result.finalOutput),
      records,
    });
    expect(records.every((r) => r.agent === "support-bot")).toBe(true);
    // The original agent is untouched.
    expect(agent.tools[0]).toBe(t.web_fetch);
  });

  it("MCP tools: a tool of a real stdio MCP server is guarded, carries its server name, and taints later calls", async () => {
    server = await startOpenAIServer();
    const host = hostTools();
    const t = agentTools(host);
    const mcp = new MCPServerStdio({
      name: "web",
      command: process.execPath,
      args: ["--import", "tsx", fileURLToPath(new URL("./mcp-web-server.ts", import.meta.url))],
    });
    await mcp.connect();
    try {
      const agent = new Agent({
        name: "support",
        model: model(),
        tools: [t.delete_records, t.send_email],
        mcpServers: [mcp],
      });
      const result = await run(guardAgent(e2e.warden, agent), "Read the FAQ");
      const records = await e2e.audit();
      const decisions = records.filter((r) => r.kind === "decision");
      expect(decisions.map((d) => [d.tool, d.server, d.verdict])).toEqual([
        ["web_fetch", "web", "allow"],
        ["delete_records", undefined, "deny"],
        ["send_email", undefined, "deny"],
      ]);
      expect(decisions[2].rule).toBe("no-untrusted-into-external-sinks");
      expect(host.ran).toEqual([]);
      expect(String(result.finalOutput)).toContain("refused by policy");
    } finally {
      await mcp.close();
    }
  });

  it("an `ask` is the SDK's needsApproval: approving the interruption runs the call once", async () => {
    server = await startOpenAIServer(refundStep);
    const host = hostTools();
    const refund = tool({
      name: "refund",
      description: "Refund an order",
      parameters: z.object({ order: z.string(), amount: z.number() }),
      execute: host.refund,
    });
    const agent = guardAgent(e2e.warden, new Agent({ name: "support", model: model(), tools: [refund] }));
    const first = await run(agent, "Refund order A-1001");
    expect(first.interruptions).toHaveLength(1);
    expect(host.ran).toEqual([]);
    first.state.approve(first.interruptions[0]);
    const second = await run(agent, first.state);
    expect(host.ran).toEqual([{ tool: "refund", args: { order: "A-1001", amount: 250 } }]);
    expect(String(second.finalOutput)).toBe("Refund result: refunded 250 on A-1001");
    const records = await e2e.audit();
    expect(records.map((r) => [r.kind, r.verdict ?? r.approval?.status])).toEqual([
      ["decision", "ask"],
      ["approval", "approved"],
      ["decision", "allow"],
    ]);
    expect(records[1].approval?.by).toMatch(/^openai-agents:/);
  });

  it("a rejected interruption never reaches the tool or the policy", async () => {
    server = await startOpenAIServer(refundStep);
    const host = hostTools();
    const refund = tool({
      name: "refund",
      description: "Refund",
      parameters: z.object({ order: z.string(), amount: z.number() }),
      execute: host.refund,
    });
    const agent = guardAgent(e2e.warden, new Agent({ name: "support", model: model(), tools: [refund] }));
    const first = await run(agent, "Refund order A-1001");
    first.state.reject(first.interruptions[0]);
    await run(agent, first.state);
    expect(host.ran).toEqual([]);
    expect(await e2e.audit()).toEqual([]);
  });
});
