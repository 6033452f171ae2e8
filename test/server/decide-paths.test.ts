import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./helpers.js";

// POST /v1/decide has two carriers: a body with a declared length is answered on the Node request
// itself (decide-on-node.ts), a streamed one (chunked, no length) by the Hono route. Both must give
// the same answer, headers included, for every outcome.

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

/** One request on a fresh connection, its body sent with a Content-Length or chunked. */
function post(url: string, headers: Record<string, string>, body: string, chunked: boolean): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}/v1/decide`,
      {
        method: "POST",
        agent: false,
        headers: chunked
          ? { ...headers, "Transfer-Encoding": "chunked" }
          : { ...headers, "Content-Length": String(Buffer.byteLength(body)) },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          text += chunk;
        });
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(text) }),
        );
      },
    );
    req.on("error", reject);
    if (chunked) {
      // Two chunks, so nothing can read it as one declared body.
      req.write(body.slice(0, 5));
      req.end(body.slice(5));
    } else req.end(body);
  });
}

/** What both carriers must agree on: the status, the body, and every header but the per-response ones. */
function comparable(answer: Answer) {
  const { date, connection, "keep-alive": keepAlive, "transfer-encoding": te, ...headers } = answer.headers;
  return { status: answer.status, headers, body: answer.body };
}

let t: TestServer;
let agentKey: string;
let approverKey: string;

beforeAll(async () => {
  t = await startTestServer({ maxBodyBytes: 2048 });
  agentKey = await t.key("agent", "bot");
  approverKey = await t.key("approver");
  const other = await t.key("agent", "other-bot");
  // A session another agent owns.
  const opened = await t.request("POST", "/v1/decide", {
    key: other,
    body: { call: { tool: "search_docs", args: { query: "q" }, session: "theirs" } },
  });
  expect(opened.status).toBe(200);
});
afterAll(() => t.close());

const call = (c: Record<string, unknown>) => JSON.stringify({ call: c });
const CASES: Array<{ name: string; key?: () => string; body: string; status: number }> = [
  {
    name: "an allowed call",
    body: call({ tool: "search_docs", args: { query: "q" }, session: "s1" }),
    status: 200,
  },
  { name: "a denied call", body: call({ tool: "delete_user", args: { id: 7 } }), status: 200 },
  { name: "no key", key: () => "", body: call({ tool: "search_docs" }), status: 401 },
  { name: "an unknown key", key: () => "tw_nope", body: call({ tool: "search_docs" }), status: 401 },
  { name: "a key of another role", key: () => approverKey, body: call({ tool: "search_docs" }), status: 403 },
  { name: "not JSON", body: "{call: nope}", status: 400 },
  { name: "a body off the schema", body: call({ tool: 7 }), status: 400 },
  { name: "another agent claimed", body: call({ tool: "search_docs", agent: { id: "x" } }), status: 403 },
  { name: "another agent's session", body: call({ tool: "search_docs", session: "theirs" }), status: 403 },
  { name: "a body over the limit", body: call({ tool: "x", args: { blob: "a".repeat(3000) } }), status: 413 },
];

describe("POST /v1/decide answers alike with a declared length (Node) and a streamed body (Hono)", () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const key = c.key ? c.key() : agentKey;
      const headers: Record<string, string> = { "Content-Type": "application/json" };
      if (key) headers.Authorization = `Bearer ${key}`;
      const declared = await post(t.url, headers, c.body, false);
      const streamed = await post(t.url, headers, c.body, true);
      expect(declared.status).toBe(c.status);
      expect(comparable(declared)).toEqual(comparable(streamed));
      expect(declared.headers["x-content-type-options"]).toBe("nosniff");
      if (c.status === 401)
        expect(declared.headers["www-authenticate"]).toMatch(/^Bearer realm="toolwarden"/);
    });
  }
});
