import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { INTEROP, rawProxy, tempDir, until } from "./helpers.js";

const POLICY = "version: 1\ndefault: allow\n";
const FLOOD = 100_000;

const isNotification = (m: Record<string, unknown>) => m.method === "notifications/message";

describe("mcp proxy in front of a server that floods notifications", () => {
  it("keeps answering calls, bounds what waits for a slow client, and says what it dropped", async () => {
    const log = join(tempDir(), "fixture.log");
    const proxy = rawProxy({ policy: POLICY, server: INTEROP, env: { SDK: "v1", FIXTURE_LOG: log } });
    await proxy.initialize();
    // The client stops reading while the server writes 100k notifications and it asks for more work.
    proxy.pause();
    proxy.send({ id: 1, method: "tools/call", params: { name: "flood", arguments: { count: FLOOD } } });
    proxy.send({
      id: 2,
      method: "tools/call",
      params: { name: "echo", arguments: { message: "still there" } },
    });
    await until(() => readLog(log).includes(`flooded ${FLOOD}`), "the server to finish its flood", 25_000);
    proxy.resume();
    const flooded = await proxy.next((m) => m.id === 1);
    expect(flooded).toMatchObject({ result: { content: [{ text: `flooded ${FLOOD}` }] } });
    const echoed = await proxy.next((m) => m.id === 2);
    expect(echoed).toMatchObject({ result: { content: [{ text: "echo: still there" }] } });
    // Notifications did reach the client, but not all of them: what it could not take was dropped.
    const received = proxy.messages.filter(isNotification).length;
    expect(received).toBeGreaterThan(0);
    expect(received).toBeLessThan(FLOOD / 2);
    // Neither answer waited behind more than the bound (1,000 queued + 32 in flight + the pipe's window).
    expect(proxy.messages.indexOf(echoed)).toBeLessThan(5000);
    proxy.send({ id: 3, method: "tools/call", params: { name: "echo", arguments: { message: "after" } } });
    expect(await proxy.next((m) => m.id === 3)).toMatchObject({
      result: { content: [{ text: "echo: after" }] },
    });
    proxy.kill("SIGTERM");
    const { code } = await proxy.exited;
    expect(code).toBe(0);
    expect(proxy.stderr()).toMatch(
      /the client did not keep up with server `fixture`: \d+ notifications dropped/,
    );
  });

  it("stops on SIGTERM in the middle of a flood", async () => {
    const proxy = rawProxy({ policy: POLICY, server: INTEROP, env: { SDK: "v1" } });
    await proxy.initialize();
    proxy.send({ id: 1, method: "tools/call", params: { name: "flood", arguments: { count: 300_000 } } });
    await proxy.next(isNotification);
    proxy.kill("SIGTERM");
    const { code, signal } = await proxy.exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
  });
});

function readLog(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}
