import Anthropic from "@anthropic-ai/sdk";
import { betaTool } from "@anthropic-ai/sdk/helpers/beta/json-schema";
import type { MessageParam } from "@anthropic-ai/sdk/resources/messages";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { guardRunnableTools, guardToolUses } from "../../src/adapters/anthropic/index.js";
import { type E2E, e2eWarden, expectScriptedRun, hostTools } from "./harness.js";
import { anthropicToolResults, startAnthropicServer } from "./servers/anthropic.js";

const TOOLS = ["web_fetch", "delete_records", "send_email"] as const;
const inputSchema = { type: "object", properties: {}, additionalProperties: true } as const;

describe("toolwarden/anthropic against a local Messages API server", () => {
  let e2e: E2E;
  let server: Awaited<ReturnType<typeof startAnthropicServer>>;
  let client: Anthropic;

  beforeEach(async () => {
    e2e = await e2eWarden();
    server = await startAnthropicServer();
    client = new Anthropic({ apiKey: "test", baseURL: server.url, maxRetries: 0 });
  });
  afterEach(async () => {
    await server.close();
    await e2e.cleanup();
  });

  it("Messages API: the host loop answers tool_use blocks with tool_result blocks", async () => {
    const host = hostTools();
    const { web_fetch, delete_records, send_email } = host;
    const tools = guardToolUses(
      e2e.warden,
      { web_fetch, delete_records, send_email },
      { agent: { id: "support-bot" } },
    );
    const messages: MessageParam[] = [{ role: "user", content: "Read the FAQ" }];
    let finalText: string | undefined;
    for (let turn = 0; turn < 6; turn++) {
      const message = await client.messages.create({
        model: "scripted-claude",
        max_tokens: 256,
        messages,
        tools: TOOLS.map((name) => ({ name, input_schema: inputSchema })),
      });
      if (message.stop_reason !== "tool_use") {
        finalText = message.content.map((b) => (b.type === "text" ? b.text : "")).join("");
        break;
      }
      messages.push(
        { role: "assistant", content: message.content },
        { role: "user", content: await tools.toolResults(message.content) },
      );
    }
    const records = await e2e.audit();
    expectScriptedRun({
      ran: host.ran,
      resultsPerRequest: server.conversations.map((messages) => anthropicToolResults({ messages })),
      finalText,
      records,
    });
    // Refusals are marked as errors for the model.
    const last = server.conversations[3].at(-1).content[0];
    expect(last).toMatchObject({ type: "tool_result", is_error: true });
    expect(server.conversations[1].at(-1).content[0].is_error).toBeUndefined();
    expect([...tools.decisions.values()].map((d) => d.verdict)).toEqual(["allow", "deny", "deny"]);
    expect(records.find((r) => r.kind === "decision")?.agent).toBe("support-bot");
  });

  for (const stream of [false, true]) {
    it(`beta toolRunner${stream ? " (streaming)" : ""}: the SDK's own loop gets is_error results for refusals`, async () => {
      const host = hostTools();
      const runnable = TOOLS.map((name) =>
        betaTool({
          name,
          description: name,
          inputSchema,
          run: async (input) => (await host[name](input as never)) as string,
        }),
      );
      const tools = guardRunnableTools(e2e.warden, runnable);
      const params = {
        model: "scripted-claude",
        max_tokens: 256,
        messages: [{ role: "user" as const, content: "Read the FAQ" }],
        tools,
      };
      let finalText: string | undefined;
      if (stream) {
        const runner = client.beta.messages.toolRunner({ ...params, stream: true });
        for await (const messageStream of runner) {
          const message = await messageStream.finalMessage();
          finalText = message.content.map((b) => (b.type === "text" ? b.text : "")).join("");
        }
      } else {
        const message = await client.beta.messages.toolRunner(params);
        finalText = message.content.map((b) => (b.type === "text" ? b.text : "")).join("");
      }
      expectScriptedRun({
        ran: host.ran,
        resultsPerRequest: server.conversations.map((messages) => anthropicToolResults({ messages })),
        finalText,
        records: await e2e.audit(),
      });
      const refused = server.conversations[3].at(-1).content[0];
      expect(refused).toMatchObject({ type: "tool_result", is_error: true });
      expect(server.requests.map((r) => Boolean(r.body.stream))).toEqual([stream, stream, stream, stream]);
      // The runner continues a server-side thread: later requests carry only the new tool results.
      expect(server.requests[3].body.thread).toMatchObject({
        type: "continue",
        previous_message_id: "msg_3",
      });
      expect(server.requests[3].body.messages).toHaveLength(1);
    });
  }
});
