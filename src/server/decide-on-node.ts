import type { IncomingMessage, ServerResponse } from "node:http";
import { errorReply, identify, KeyRefused } from "./app.js";
import { bodyTooLarge } from "./http-errors.js";
import { CALLERS, type ServerContext } from "./routes/context.js";
import { decideRequest } from "./routes/decisions.js";
import { SECURITY_HEADERS } from "./secure-headers.js";

const JSON_HEADERS = [...SECURITY_HEADERS.flat(), "Content-Type", "application/json"];

/**
 * `POST /v1/decide` answered on the Node request itself, ahead of Hono: the route that carries
 * nearly all of the traffic, without a web Request, Response and middleware chain per call (about
 * a fifth of a decision through `serve`). The key, the body and the decision go through the same
 * functions as the Hono route, in the same order, and a test holds both routes' answers equal.
 * Returns false for a request it leaves to Hono: any other route, a body without a declared length
 * (Hono counts it as it streams), or a server with CORS on.
 */
export function decideOnNode(ctx: ServerContext): (req: IncomingMessage, res: ServerResponse) => boolean {
  if (ctx.corsOrigins?.length) return () => false;
  return (req, res) => {
    if (req.method !== "POST" || req.url !== "/v1/decide") return false;
    const length = req.headers["content-length"];
    if (length === undefined || req.headers["transfer-encoding"] !== undefined) return false;
    answer(ctx, req, res, Number.parseInt(length, 10)).catch((error: Error) =>
      send(res, {
        ...errorReply(error, ctx.log, "POST /v1/decide"),
        challenge: error instanceof KeyRefused ? error.challenge : undefined,
      }),
    );
    return true;
  };
}

async function answer(ctx: ServerContext, req: IncomingMessage, res: ServerResponse, length: number) {
  if (length > ctx.maxBodyBytes) throw bodyTooLarge(ctx.maxBodyBytes);
  const identity = await identify(ctx.keys, req.headers.authorization, CALLERS.agent);
  if (identity instanceof KeyRefused) throw identity;
  const text = await bodyText(req);
  let aborted: AbortController | undefined;
  const signal = () => {
    if (!aborted) {
      const controller = new AbortController();
      res.once("close", () => controller.abort());
      aborted = controller;
    }
    return aborted.signal;
  };
  send(res, { status: 200, body: await decideRequest(ctx, identity, text, signal) });
}

function bodyText(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.once("end", () => {
      const text = (chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)).toString("utf8");
      // As the web Request's text() reads it: a leading byte order mark is not part of the text.
      resolve(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
    });
    req.once("error", reject);
  });
}

function send(res: ServerResponse, reply: { status: number; body: unknown; challenge?: string }): void {
  if (res.headersSent) return void res.end();
  const json = JSON.stringify(reply.body);
  const headers = [...JSON_HEADERS, "Content-Length", String(Buffer.byteLength(json))];
  if (reply.challenge) headers.push("WWW-Authenticate", reply.challenge);
  res.writeHead(reply.status, headers).end(json);
}
