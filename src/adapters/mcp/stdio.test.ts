import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { LineTransport, parseByteSize } from "./stdio.js";

function pair(maxLine?: number) {
  const input = new PassThrough();
  const output = new PassThrough();
  const transport = new LineTransport(input, output, { maxLine });
  const messages: unknown[] = [];
  let closed = false;
  transport.onmessage = (message) => messages.push(message);
  transport.onclose = () => {
    closed = true;
  };
  return { input, output, transport, messages, closed: () => closed };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("LineTransport", () => {
  it("splits at \\n only: U+2028 and U+2029 stay inside a message", async () => {
    const { input, transport, messages } = pair();
    await transport.start();
    const line = JSON.stringify({ jsonrpc: "2.0", method: "m", params: { text: "one\u2028two\u2029three" } });
    input.write(`${line.slice(0, 10)}`);
    input.write(`${line.slice(10)}\n{"jsonrpc":"2.0","method":"n"}\n`);
    await tick();
    expect(messages).toEqual([
      { jsonrpc: "2.0", method: "m", params: { text: "one\u2028two\u2029three" } },
      { jsonrpc: "2.0", method: "n" },
    ]);
  });

  it("ends the connection with a reason at a line over the limit, also one split across chunks", async () => {
    const { input, transport, messages, closed } = pair(32);
    await transport.start();
    input.write('{"jsonrpc":"2.0","method":"ok"}\n');
    input.write("x".repeat(20));
    input.write("x".repeat(20));
    await tick();
    expect(messages).toHaveLength(1);
    expect(closed()).toBe(true);
    expect(transport.reason).toBe("received a line of more than 32 bytes");
    await expect(transport.send({ jsonrpc: "2.0", method: "late" })).rejects.toThrow(/more than 32 bytes/);
  });

  it("reports messages that are not JSON-RPC without ending the connection", async () => {
    const { input, transport, messages, closed } = pair();
    const errors: string[] = [];
    transport.onerror = (error) => errors.push(error.message);
    await transport.start();
    input.write('not json\n{"id":1}\n{"jsonrpc":"2.0","method":"ok"}\n');
    await tick();
    expect(errors).toHaveLength(2);
    expect(messages).toHaveLength(1);
    expect(closed()).toBe(false);
  });
});

describe("parseByteSize", () => {
  it.each([
    ["1024", 1024],
    ["64KiB", 65536],
    ["10MiB", 10 * 1024 * 1024],
    ["1.5 MB", 1572864],
    ["2g", 2 * 1024 ** 3],
    ["lots", undefined],
    ["0", undefined],
    ["-5", undefined],
  ])("%s -> %s", (text, bytes) => {
    expect(parseByteSize(text)).toBe(bytes);
  });
});
