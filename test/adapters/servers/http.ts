import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** A request the scripted model received. */
export interface Recorded {
  path: string;
  body: any;
}

/** A local stand-in for a hosted LLM API: the real client library talks to it over HTTP. */
export interface FakeServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  requests: Recorded[];
  close(): Promise<void>;
}

type Handler = (path: string, body: any, res: ServerResponse, server: FakeServer) => void;

/** Listens on 127.0.0.1 (an ephemeral port) and hands each POST's JSON body to `handle`. */
export async function listen(handle: Handler): Promise<FakeServer> {
  const requests: Recorded[] = [];
  const http = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      let body: any;
      try {
        body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString("utf8")) : undefined;
      } catch {
        sendJson(res, 400, { error: { message: "body is not JSON" } });
        return;
      }
      const path = (req.url ?? "/").split("?")[0];
      requests.push({ path, body });
      try {
        handle(path, body, res, server);
      } catch (error) {
        sendJson(res, 500, { error: { message: (error as Error).message } });
      }
    });
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const { port } = http.address() as AddressInfo;
  const server: FakeServer = {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        http.closeAllConnections();
        http.close((error) => (error ? reject(error) : resolve()));
      }),
  };
  return server;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

/** Server-sent events: `event:` lines when named, `data:` lines as JSON (or raw strings such as `[DONE]`). */
export function sendSse(res: ServerResponse, events: Array<{ event?: string; data: unknown }>): void {
  res.writeHead(200, {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    connection: "keep-alive",
  });
  for (const { event, data } of events) {
    if (event) res.write(`event: ${event}\n`);
    res.write(`data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`);
  }
  res.end();
}
