import { contentText, nextStep, type Step } from "../script.js";
import { type FakeServer, listen, sendJson, sendSse } from "./http.js";

const MODEL = "scripted-claude";

/** The Anthropic stand-in: `conversations[i]` is the whole history the model saw at request `i`. */
export interface AnthropicServer extends FakeServer {
  conversations: any[][];
}

/**
 * Speaks the Anthropic Messages wire format on 127.0.0.1: `POST /v1/messages` (JSON, or SSE
 * events with `stream: true`), including message threads (`thread: { type: "continue",
 * previous_message_id }` sends only the new messages; the server keeps the rest), which the
 * SDK's tool runner uses. Each answer is `script(tool results so far)`.
 */
export async function startAnthropicServer(
  script: (results: string[]) => Step = nextStep,
): Promise<AnthropicServer> {
  const conversations: any[][] = [];
  // What the model has seen up to and including each reply, by reply id.
  const threads = new Map<string, any[]>();
  const server = await listen((path, body, res, self) => {
    if (path !== "/v1/messages") {
      sendJson(res, 404, { type: "error", error: { type: "not_found_error", message: `no route ${path}` } });
      return;
    }
    const previous = body.thread?.type === "continue" ? threads.get(body.thread.previous_message_id) : [];
    if (!previous) {
      sendJson(res, 404, { type: "error", error: { type: "not_found_error", message: "thread_not_found" } });
      return;
    }
    const history = [...previous, ...body.messages];
    conversations.push(history);
    const step = script(anthropicToolResults({ messages: history }));
    const n = self.requests.length;
    threads.set(`msg_${n}`, [...history, { role: "assistant", content: [block(step, n)] }]);
    if (body.stream) sendSse(res, events(step, n));
    else sendJson(res, 200, message(step, n));
  });
  return Object.assign(server, { conversations });
}

function block(step: Step, n: number) {
  return "tool" in step
    ? { type: "tool_use", id: `toolu_${n}`, name: step.tool, input: step.args }
    : { type: "text", text: step.text };
}

function message(step: Step, n: number) {
  return {
    id: `msg_${n}`,
    type: "message",
    role: "assistant",
    model: MODEL,
    content: [block(step, n)],
    stop_reason: "tool" in step ? "tool_use" : "end_turn",
    stop_sequence: null,
    usage: { input_tokens: 12, output_tokens: 5 },
  };
}

function events(step: Step, n: number) {
  const start = "tool" in step ? { ...block(step, n), input: {} } : { type: "text", text: "" };
  const delta =
    "tool" in step
      ? { type: "input_json_delta", partial_json: JSON.stringify(step.args) }
      : { type: "text_delta", text: step.text };
  const e = (event: string, data: Record<string, unknown>) => ({ event, data: { type: event, ...data } });
  return [
    e("message_start", {
      message: {
        ...message(step, n),
        content: [],
        stop_reason: null,
        usage: { input_tokens: 12, output_tokens: 1 },
      },
    }),
    e("content_block_start", { index: 0, content_block: start }),
    e("content_block_delta", { index: 0, delta }),
    e("content_block_stop", { index: 0 }),
    e("message_delta", {
      delta: { stop_reason: "tool" in step ? "tool_use" : "end_turn", stop_sequence: null },
      usage: { output_tokens: 5 },
    }),
    e("message_stop", {}),
  ];
}

/** The texts of the `tool_result` blocks in a Messages request, in order. */
export function anthropicToolResults(body: any): string[] {
  const results: string[] = [];
  for (const message of body.messages as any[]) {
    if (message.role !== "user" || !Array.isArray(message.content)) continue;
    for (const block of message.content)
      if (block.type === "tool_result") results.push(contentText(block.content));
  }
  return results;
}
