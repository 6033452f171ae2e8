import { mkdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EVERYTHING, FILESYSTEM, proxied, tempDir, text } from "./helpers.js";
import type { Proxied } from "./helpers.js";

describe("mcp proxy in front of the reference `everything` server", () => {
  let proxy: Proxied;
  beforeAll(async () => {
    proxy = await proxied({
      serverId: "everything",
      server: EVERYTHING,
      policy: "version: 1\ndefault: allow\ndeny: [get-env]\n",
    });
  });
  afterAll(() => proxy?.close());

  it("mirrors the server: its name, tools, resources and prompts", async () => {
    expect(proxy.client.getServerVersion()?.name).toBe("mcp-servers/everything");
    const tools = (await proxy.client.listTools()).tools.map((tool) => tool.name);
    expect(tools).toEqual(
      expect.arrayContaining(["echo", "get-sum", "get-env", "trigger-long-running-operation"]),
    );
    const resources = (await proxy.client.listResources()).resources;
    expect(resources.length).toBeGreaterThan(0);
    const read = await proxy.client.readResource({ uri: resources[0].uri });
    expect(read.contents[0].uri).toBe(resources[0].uri);
    expect((await proxy.client.listPrompts()).prompts.length).toBeGreaterThan(0);
  });

  it("round-trips an allowed call", async () => {
    expect(
      text(await proxy.client.callTool({ name: "echo", arguments: { message: "hello through the proxy" } })),
    ).toBe("Echo: hello through the proxy");
    expect(text(await proxy.client.callTool({ name: "get-sum", arguments: { a: 2, b: 40 } }))).toContain(
      "42",
    );
  });

  it("returns a denied call as an error result with the reason, and keeps serving", async () => {
    const result = await proxy.client.callTool({ name: "get-env", arguments: {} });
    expect(result.isError).toBe(true);
    expect(text(result)).toBe(
      "toolwarden denied `get-env` (rule `deny:get-env`): `get-env` is on the deny list. The call was not run.",
    );
    expect(result._meta?.["toolwarden/decision"]).toMatchObject({ verdict: "deny", rule: "deny:get-env" });
    expect(text(await proxy.client.callTool({ name: "echo", arguments: { message: "still here" } }))).toBe(
      "Echo: still here",
    );
  });

  it("passes progress notifications through under the caller's token", async () => {
    const progress: number[] = [];
    const result = await proxy.client.callTool(
      { name: "trigger-long-running-operation", arguments: { duration: 0.2, steps: 3 } },
      undefined,
      {
        onprogress: (p) => progress.push(p.progress),
      },
    );
    expect(result.isError).toBeFalsy();
    // When the last progress notification and the result arrive in one read, the SDK client can
    // handle the result first and drop that notification (a direct client too): require the
    // others, in order.
    for (let i = 0; i < 25 && progress.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
    expect(progress.slice(0, 2)).toEqual([1, 2]);
    expect(progress.every((p, i) => p === i + 1)).toBe(true);
  });

  it("audits every decision with the server id, and the pins taken on first use", async () => {
    await proxy.close();
    const audit = proxy.audit();
    const decisions = audit.filter((r) => r.kind === "decision").map((r) => [r.tool, r.server, r.verdict]);
    expect(decisions).toEqual(
      expect.arrayContaining([
        ["echo", "everything", "allow"],
        ["get-env", "everything", "deny"],
      ]),
    );
    const pins = audit.filter((r) => r.kind === "pin" && r.rule === "pin.first_use").map((r) => r.tool);
    expect(pins).toEqual(expect.arrayContaining(["echo", "get-env"]));
    expect(audit.every((r) => typeof r.hmac === "string" && (r.hmac as string).length === 64)).toBe(true);
  });
});

describe("mcp proxy in front of the reference filesystem server", () => {
  const root = realpathSync(tempDir("tw-fs-"));
  mkdirSync(join(root, "out"));
  writeFileSync(join(root, "notes.txt"), "meeting at noon\n");
  let proxy: Proxied;
  beforeAll(async () => {
    proxy = await proxied({
      serverId: "fs",
      server: FILESYSTEM(root),
      policy: `version: 1
default: allow
rules:
  - name: writes-only-under-out
    when: { tool: write_file, not: { args.path: { prefix: "${root}/out/" } } }
    verdict: deny
    message: Files may only be written under out/.
`,
    });
  });
  afterAll(() => proxy?.close());

  it("reads a file and writes where the policy allows", async () => {
    expect(
      text(
        await proxy.client.callTool({ name: "read_text_file", arguments: { path: join(root, "notes.txt") } }),
      ),
    ).toBe("meeting at noon\n");
    const written = await proxy.client.callTool({
      name: "write_file",
      arguments: { path: join(root, "out", "a.txt"), content: "ok" },
    });
    expect(written.isError).toBeFalsy();
    expect(readFileSync(join(root, "out", "a.txt"), "utf8")).toBe("ok");
  });

  it("denies a write elsewhere before the server sees it", async () => {
    const denied = await proxy.client.callTool({
      name: "write_file",
      arguments: { path: join(root, "notes.txt"), content: "overwritten" },
    });
    expect(denied.isError).toBe(true);
    expect(text(denied)).toBe(
      "toolwarden denied `write_file` (rule `writes-only-under-out`): Files may only be written under out/. The call was not run.",
    );
    expect(readFileSync(join(root, "notes.txt"), "utf8")).toBe("meeting at noon\n");
  });
});
