import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import type { ChatCompletionMessageParam } from "openai/resources/chat/completions";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { guardToolCalls } from "../../src/adapters/openai/index.js";
import { JsonlAuditSink } from "../../src/audit/jsonl-sink.js";
import { Warden } from "../../src/index.js";
import { chatToolResults, startOpenAIServer } from "./servers/openai.js";

// A made-up token in GitHub's format, in the `.env` file the tool reads.
const TOKEN = "ghp_Xq7Lm2Pz9Rt4Vw8Ky1Nb6Hc3Jd5Fg0aB1cD2";
const ENV_FILE = `NODE_ENV=production\nGITHUB_TOKEN=${TOKEN}\nPORT=8080\n`;
const POLICY = `version: 1
default: allow
detect:
  secrets: { args: deny, outputs: mask }
`;

describe("output detectors through the OpenAI adapter, against a local OpenAI-compatible server", () => {
  let dir: string;
  let server: Awaited<ReturnType<typeof startOpenAIServer>>;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "tw-output-openai-"));
    // The scripted model reads `.env` once, then answers.
    server = await startOpenAIServer((results) =>
      results.length === 0 ? { tool: "read_file", args: { path: ".env" } } : { text: "done" },
    );
  });
  afterEach(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("the model receives the masked file, and the audit records that it was masked", async () => {
    const auditPath = join(dir, "audit.jsonl");
    const warden = Warden.fromText(POLICY, {
      audit: await JsonlAuditSink.open({ path: auditPath, unsigned: true, durability: "write" }),
    });
    const tools = guardToolCalls(warden, { read_file: async (_args: { path: string }) => ENV_FILE });
    const client = new OpenAI({ apiKey: "test", baseURL: server.baseURL, maxRetries: 0 });
    const messages: ChatCompletionMessageParam[] = [{ role: "user", content: "What is in .env?" }];
    for (let turn = 0; turn < 4; turn++) {
      const completion = await client.chat.completions.create({
        model: "scripted-gpt",
        messages,
        tools: [{ type: "function", function: { name: "read_file", parameters: { type: "object" } } }],
      });
      const message = completion.choices[0]!.message;
      messages.push(message);
      if (!message.tool_calls?.length) break;
      messages.push(...(await tools.chat(message.tool_calls)));
    }
    await warden.close();

    const seenByModel = server.requests.flatMap((r) => chatToolResults(r.body));
    expect(seenByModel).toEqual(["NODE_ENV=production\nGITHUB_TOKEN=[REDACTED]\nPORT=8080\n"]);
    const records = (await readFile(auditPath, "utf8"))
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(records.filter((r) => r.kind === "output")).toEqual([
      expect.objectContaining({
        tool: "read_file",
        data: { detected: ["secret.github_token"], action: "masked" },
      }),
    ]);
    expect(JSON.stringify(records)).not.toContain(TOKEN);
  });
});
