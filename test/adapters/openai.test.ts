import OpenAI from "openai";
import type { ChatCompletionMessageParam } from "openai/resources/chat/completions";
import type { ResponseInputItem } from "openai/resources/responses/responses";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { guardRunnableTools, guardToolCalls } from "../../src/adapters/openai/index.js";
import { type E2E, e2eWarden, expectScriptedRun, hostTools } from "./harness.js";
import { chatToolResults, responsesToolResults, startOpenAIServer } from "./servers/openai.js";

const TOOLS = ["web_fetch", "delete_records", "send_email"] as const;
const parameters = { type: "object" as const, properties: {}, additionalProperties: true };

const functions = ({ web_fetch, delete_records, send_email }: ReturnType<typeof hostTools>) => ({
  web_fetch,
  delete_records,
  send_email,
});

describe("toolwarden/openai against a local OpenAI-compatible server", () => {
  let e2e: E2E;
  let server: Awaited<ReturnType<typeof startOpenAIServer>>;
  let client: OpenAI;

  beforeEach(async () => {
    e2e = await e2eWarden();
    server = await startOpenAIServer();
    client = new OpenAI({ apiKey: "test", baseURL: server.baseURL, maxRetries: 0 });
  });
  afterEach(async () => {
    await server.close();
    await e2e.cleanup();
  });

  it("Chat Completions: the host loop answers tool_calls through guardToolCalls", async () => {
    const host = hostTools();
    const tools = guardToolCalls(e2e.warden, functions(host), { agent: { id: "support-bot" } });
    const messages: ChatCompletionMessageParam[] = [{ role: "user", content: "Read the FAQ" }];
    let finalText: string | null | undefined;
    for (let turn = 0; turn < 6; turn++) {
      const completion = await client.chat.completions.create({
        model: "scripted-gpt",
        messages,
        tools: TOOLS.map((name) => ({ type: "function" as const, function: { name, parameters } })),
      });
      const message = completion.choices[0].message;
      messages.push(message);
      if (!message.tool_calls?.length) {
        finalText = message.content;
        break;
      }
      messages.push(...(await tools.chat(message.tool_calls)));
    }
    const records = await e2e.audit();
    const { session } = expectScriptedRun({
      ran: host.ran,
      resultsPerRequest: server.requests.map((r) => chatToolResults(r.body)),
      finalText: finalText ?? undefined,
      records,
    });
    expect(session).toBe(tools.session.id);
    expect(records.filter((r) => r.kind === "decision").every((r) => r.agent === "support-bot")).toBe(true);
    expect(tools.results.map((r) => r.decision?.verdict)).toEqual(["allow", "deny", "deny"]);
  });

  it("Responses API: function_call items become function_call_output items", async () => {
    const host = hostTools();
    const tools = guardToolCalls(e2e.warden, functions(host));
    const input: ResponseInputItem[] = [{ role: "user", content: "Read the FAQ" }];
    let finalText: string | undefined;
    for (let turn = 0; turn < 6; turn++) {
      const response = await client.responses.create({
        model: "scripted-gpt",
        input,
        tools: TOOLS.map((name) => ({ type: "function" as const, name, parameters, strict: false })),
      });
      const outputs = await tools.responses(response.output);
      if (!outputs.length) {
        finalText = response.output_text;
        break;
      }
      input.push(...(response.output as ResponseInputItem[]), ...outputs);
    }
    expectScriptedRun({
      ran: host.ran,
      resultsPerRequest: server.requests.map((r) => responsesToolResults(r.body)),
      finalText,
      records: await e2e.audit(),
    });
  });

  for (const stream of [false, true]) {
    it(`runTools${stream ? " (streaming)" : ""}: the SDK's own loop calls the guarded functions`, async () => {
      const host = hostTools();
      const runnable = TOOLS.map((name) => ({
        type: "function" as const,
        function: {
          name,
          description: name,
          parameters,
          parse: JSON.parse,
          function: host[name] as (args: any) => unknown,
        },
      }));
      const params = {
        model: "scripted-gpt",
        messages: [{ role: "user" as const, content: "Read the FAQ" }],
      };
      const tools = guardRunnableTools(e2e.warden, runnable);
      const runner = stream
        ? client.chat.completions.runTools({ ...params, tools, stream: true })
        : client.chat.completions.runTools({ ...params, tools });
      const finalText = await runner.finalContent();
      expectScriptedRun({
        ran: host.ran,
        resultsPerRequest: server.requests.map((r) => chatToolResults(r.body)),
        finalText: finalText ?? undefined,
        records: await e2e.audit(),
      });
      expect(server.requests.map((r) => Boolean(r.body.stream))).toEqual([stream, stream, stream, stream]);
    });
  }

  it("runTools: two runs of the same guarded tools are two sessions", async () => {
    const host = hostTools();
    const runnable = TOOLS.map((name) => ({
      type: "function" as const,
      function: {
        name,
        description: name,
        parameters,
        parse: JSON.parse,
        function: host[name] as (args: any) => unknown,
      },
    }));
    const tools = guardRunnableTools(e2e.warden, runnable);
    const params = { model: "scripted-gpt", messages: [{ role: "user" as const, content: "Read the FAQ" }] };
    await client.chat.completions.runTools({ ...params, tools }).finalContent();
    await client.chat.completions.runTools({ ...params, tools }).finalContent();
    const decisions = (await e2e.audit()).filter((r) => r.kind === "decision");
    expect(decisions).toHaveLength(6);
    expect(new Set(decisions.slice(0, 3).map((d) => d.session)).size).toBe(1);
    expect(new Set(decisions.map((d) => d.session)).size).toBe(2);
  });
});
