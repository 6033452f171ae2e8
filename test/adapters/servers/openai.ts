import { contentText, nextStep, type Step } from "../script.js";
import { type FakeServer, listen, sendJson, sendSse } from "./http.js";

const MODEL = "scripted-gpt";
const usage = { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 };

/**
 * Speaks the OpenAI wire format on 127.0.0.1: `POST /v1/chat/completions` (JSON or SSE with
 * `stream: true`) and `POST /v1/responses` (JSON). Each answer is `script(tool results so far)`.
 */
export async function startOpenAIServer(
  script: (results: string[]) => Step = nextStep,
): Promise<FakeServer & { baseURL: string }> {
  const server = await listen((path, body, res, self) => {
    const n = self.requests.length;
    if (path === "/v1/chat/completions") {
      const step = script(chatToolResults(body));
      if (body.stream) sendSse(res, chatChunks(step, n, body.stream_options?.include_usage === true));
      else sendJson(res, 200, chatCompletion(step, n));
      return;
    }
    if (path === "/v1/responses") {
      sendJson(res, 200, response(script(responsesToolResults(body)), n));
      return;
    }
    sendJson(res, 404, { error: { message: `no route ${path}` } });
  });
  return { ...server, baseURL: `${server.url}/v1` };
}

/** The texts of the `role: "tool"` messages in a Chat Completions request, in order. */
export function chatToolResults(body: any): string[] {
  return (body.messages as any[]).filter((m) => m.role === "tool").map((m) => contentText(m.content));
}

/** The texts of the `function_call_output` items in a Responses request, in order. */
export function responsesToolResults(body: any): string[] {
  const input = Array.isArray(body.input) ? body.input : [];
  return input.filter((i: any) => i.type === "function_call_output").map((i: any) => contentText(i.output));
}

function chatCompletion(step: Step, n: number) {
  const message =
    "tool" in step
      ? {
          role: "assistant",
          content: null,
          refusal: null,
          tool_calls: [
            {
              id: `call_${n}`,
              type: "function",
              function: { name: step.tool, arguments: JSON.stringify(step.args) },
            },
          ],
        }
      : { role: "assistant", content: step.text, refusal: null };
  return {
    id: `chatcmpl-${n}`,
    object: "chat.completion",
    created: 1_700_000_000 + n,
    model: MODEL,
    choices: [{ index: 0, message, logprobs: null, finish_reason: "tool" in step ? "tool_calls" : "stop" }],
    usage,
  };
}

function chatChunks(step: Step, n: number, includeUsage: boolean) {
  const chunk = (delta: unknown, finish: string | null) => ({
    data: {
      id: `chatcmpl-${n}`,
      object: "chat.completion.chunk",
      created: 1_700_000_000 + n,
      model: MODEL,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    },
  });
  const events =
    "tool" in step
      ? [
          chunk(
            {
              role: "assistant",
              content: null,
              tool_calls: [
                { index: 0, id: `call_${n}`, type: "function", function: { name: step.tool, arguments: "" } },
              ],
            },
            null,
          ),
          // Arguments arrive in pieces, as they do from the real API.
          ...splitInTwo(JSON.stringify(step.args)).map((part) =>
            chunk({ tool_calls: [{ index: 0, function: { arguments: part } }] }, null),
          ),
          chunk({}, "tool_calls"),
        ]
      : [
          chunk({ role: "assistant", content: "" }, null),
          ...splitInTwo(step.text).map((part) => chunk({ content: part }, null)),
          chunk({}, "stop"),
        ];
  if (includeUsage) {
    events.push({
      data: {
        id: `chatcmpl-${n}`,
        object: "chat.completion.chunk",
        created: 1_700_000_000 + n,
        model: MODEL,
        choices: [],
        usage,
      } as never,
    });
  }
  return [...events, { data: "[DONE]" }];
}

function splitInTwo(text: string): string[] {
  const half = Math.ceil(text.length / 2);
  return [text.slice(0, half), text.slice(half)];
}

function response(step: Step, n: number) {
  const output =
    "tool" in step
      ? [
          {
            type: "function_call",
            id: `fc_${n}`,
            call_id: `call_${n}`,
            name: step.tool,
            arguments: JSON.stringify(step.args),
            status: "completed",
          },
        ]
      : [
          {
            type: "message",
            id: `msg_${n}`,
            status: "completed",
            role: "assistant",
            content: [{ type: "output_text", text: step.text, annotations: [], logprobs: [] }],
          },
        ];
  return {
    id: `resp_${n}`,
    object: "response",
    created_at: 1_700_000_000 + n,
    status: "completed",
    model: MODEL,
    output,
    error: null,
    incomplete_details: null,
    instructions: null,
    metadata: {},
    parallel_tool_calls: true,
    temperature: 1,
    top_p: 1,
    tool_choice: "auto",
    tools: [],
    text: { format: { type: "text" } },
    usage: {
      input_tokens: 12,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: 5,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: 17,
    },
  };
}
