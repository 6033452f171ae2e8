import { createServer } from "node:http";
import type { ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** What the reviewer model sends back for one request. */
export type Reply =
  /** A well-formed answer in the provider's structured form (JSON content / tool_use input). */
  | { answer: unknown }
  /** Raw text as the model's message (for malformed answers). */
  | { text: string }
  /** Never answer (until the server closes): a timeout. */
  | { hang: true }
  /** An HTTP error with the provider's error body. */
  | { status: number };

/** What the fake model was shown: the parsed user message of the request. */
export interface Shown {
  task: string;
  call: { tool: string; arguments: Record<string, unknown>; agent?: string; server?: string };
  labels_in_arguments: string[];
}

export interface JudgeServer {
  /** Base URL to put in `judge.url` (`.../v1` for OpenAI, the root for Anthropic). */
  url: string;
  /** Requests that reached the model endpoint. */
  hits: number;
  bodies: any[];
  close(): Promise<void>;
}

/**
 * A local stand-in for a hosted reviewer model on 127.0.0.1: speaks the OpenAI Chat Completions
 * (`POST /v1/chat/completions`) or Anthropic Messages (`POST /v1/messages`) wire format, so the
 * real client libraries talk to it. `reply` sees what the judge showed the model.
 */
export async function startJudgeServer(
  provider: "openai" | "anthropic",
  reply: (shown: Shown) => Reply,
): Promise<JudgeServer> {
  const bodies: any[] = [];
  const state = { hits: 0 };
  const http = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const path = (req.url ?? "/").split("?")[0];
      const expected = provider === "openai" ? "/v1/chat/completions" : "/v1/messages";
      if (req.method !== "POST" || path !== expected)
        return send(res, 404, { error: { message: `no route ${path}` } });
      let body: any;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        return send(res, 400, { error: { message: "body is not JSON" } });
      }
      state.hits++;
      bodies.push(body);
      const user = body.messages.find((m: any) => m.role === "user");
      const shown = JSON.parse(
        typeof user.content === "string" ? user.content : user.content[0].text,
      ) as Shown;
      const answer = reply(shown);
      if ("hang" in answer) return;
      if ("status" in answer) {
        return send(res, answer.status, {
          type: "error",
          error: { type: "api_error", message: "the model is overloaded" },
        });
      }
      send(res, 200, provider === "openai" ? openaiBody(body, answer) : anthropicBody(body, answer));
    });
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const { port } = http.address() as AddressInfo;
  const root = `http://127.0.0.1:${port}`;
  return {
    url: provider === "openai" ? `${root}/v1` : root,
    get hits() {
      return state.hits;
    },
    bodies,
    close: () =>
      new Promise<void>((resolve, reject) => {
        http.closeAllConnections();
        http.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

function openaiBody(request: any, reply: { answer: unknown } | { text: string }) {
  return {
    id: "chatcmpl-judge",
    object: "chat.completion",
    created: 1_700_000_000,
    model: request.model,
    choices: [
      {
        index: 0,
        message: {
          role: "assistant",
          content: "text" in reply ? reply.text : JSON.stringify(reply.answer),
          refusal: null,
        },
        finish_reason: "stop",
        logprobs: null,
      },
    ],
    usage: { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 },
  };
}

function anthropicBody(request: any, reply: { answer: unknown } | { text: string }) {
  return {
    id: "msg_judge",
    type: "message",
    role: "assistant",
    model: request.model,
    content:
      "text" in reply
        ? [{ type: "text", text: reply.text }]
        : [
            {
              type: "tool_use",
              id: "toolu_judge",
              name: request.tool_choice?.name ?? "judgement",
              input: reply.answer,
            },
          ],
    stop_reason: "text" in reply ? "end_turn" : "tool_use",
    stop_sequence: null,
    usage: { input_tokens: 100, output_tokens: 20 },
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}
