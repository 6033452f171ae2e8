import { describe, expect, it } from "vitest";
import { INTEROP, rawProxy } from "./helpers.js";

const POLICY = "version: 1\ndefault: allow\n";

describe.each(["v1", "v2"])("mcp proxy when the upstream (%s SDK) fails", (sdk) => {
  it("answers the pending call with an error naming the exit, logs it, and exits non-zero", async () => {
    const proxy = rawProxy({ policy: POLICY, server: INTEROP, env: { SDK: sdk } });
    await proxy.initialize();
    const answer = await proxy.request(1, "tools/call", { name: "crash", arguments: {} });
    expect(answer.error).toMatchObject({ message: expect.stringMatching(/`fixture`.*exited with code 3/) });
    const { code } = await proxy.exited;
    expect(code).not.toBe(0);
    expect(proxy.stderr()).toMatch(
      /server `fixture` exited with code 3; answering 1 pending request with an error/,
    );
  });

  it("answers the pending call with an error naming the line limit when a line is too long", async () => {
    const proxy = rawProxy({
      policy: POLICY,
      server: INTEROP,
      env: { SDK: sdk },
      flags: ["--max-line", "64KiB"],
    });
    await proxy.initialize();
    const answer = await proxy.request(1, "tools/call", { name: "huge", arguments: { bytes: 200_000 } });
    expect(answer.error).toMatchObject({
      message: expect.stringMatching(/`fixture` sent a line of more than 65536 bytes.*--max-line/),
    });
    const { code } = await proxy.exited;
    expect(code).not.toBe(0);
    expect(proxy.stderr()).toMatch(/more than 65536 bytes/);
  });

  it("refuses a malformed --max-line with a clear error", async () => {
    const proxy = rawProxy({
      policy: POLICY,
      server: INTEROP,
      env: { SDK: sdk },
      flags: ["--max-line", "lots"],
    });
    const { code } = await proxy.exited;
    expect(code).toBe(2);
    expect(proxy.stderr()).toMatch(/--max-line takes a size in bytes \(e\.g\. 10MiB\), not `lots`/);
  });
});
