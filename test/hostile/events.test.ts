import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startServe, tempDir, writePolicy } from "./procs.js";

/**
 * Issue 17 item 14: event stream clients that do not read are dropped past a bound instead of
 * holding up decisions or memory; a client that reads gets every event. bench/hostile-load.ts
 * measures the throughput with 200 subscribers.
 */
const POLICY = "version: 1\nname: events\ndefault: deny\nallow: [search]\naudit: { args: full }\n";

describe("event stream subscribers", () => {
  const tmp = tempDir("tw-events-");
  afterAll(() => tmp.remove());

  it("20 clients that never read are dropped; decisions go on; a reading client gets every event", async () => {
    const serve = await startServe({ policy: writePolicy(tmp.dir, POLICY), dataDir: join(tmp.dir, "data") });
    const stalled: Socket[] = [];
    const controller = new AbortController();
    try {
      for (let i = 0; i < 20; i++) {
        const socket = connect(serve.port, "127.0.0.1");
        socket.on("error", () => {});
        socket.write(
          `GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${serve.adminKey}\r\n\r\n`,
        );
        socket.pause();
        stalled.push(socket);
      }
      const response = await fetch(`${serve.url}/v1/events`, {
        headers: { Authorization: `Bearer ${serve.adminKey}` },
        signal: controller.signal,
      });
      let seen = 0;
      const reading = (async () => {
        const decoder = new TextDecoder();
        let carry = "";
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          carry += decoder.decode(chunk, { stream: true });
          const parts = carry.split("\n\n");
          carry = parts.pop() ?? "";
          for (const part of parts) if (part.startsWith("event: audit")) seen++;
        }
      })().catch(() => {});
      const filler = "x".repeat(20_000);
      const N = 300;
      for (let i = 0; i < N; i++) {
        const res = await serve.request("POST", "/v1/decide", {
          key: serve.adminKey,
          body: { call: { tool: "search", args: { i, filler } } },
        });
        expect(res.body.verdict).toBe("allow");
      }
      const metrics = (await serve.request("GET", "/metrics", { key: serve.adminKey })).text;
      const dropped = Number(/^toolwarden_event_clients_dropped (\d+)/m.exec(metrics)?.[1]);
      expect(dropped).toBe(20);
      for (let i = 0; i < 100 && seen < N; i++) await new Promise((r) => setTimeout(r, 50));
      expect(seen).toBe(N);
      controller.abort();
      await reading;
    } finally {
      for (const socket of stalled) socket.destroy();
      await serve.stop(true);
    }
  }, 120_000);
});
