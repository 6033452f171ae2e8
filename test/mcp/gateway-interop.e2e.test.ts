import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUDIT_KEY, CLI, FIXTURE, httpClient, INTEROP, readJsonl, tempDir, text, until } from "./helpers.js";
import type { AnyClient } from "./helpers.js";
import { INTEROP_POLICY, interopChecks, MATRIX } from "./interop-checks.js";

const TOKEN = "interop-token-5d1e9a7c3b20f4e8";

describe.each(MATRIX)("through the gateway: $client client, $server server (legacy: $legacy)", (cell) => {
  const dir = tempDir();
  const log = join(dir, "fixture.log");
  let gateway: ChildProcess;
  let client: AnyClient;
  let stderr = "";

  beforeAll(async () => {
    writeFileSync(join(dir, "policy.yaml"), INTEROP_POLICY);
    const env = { SDK: cell.server, LEGACY: cell.legacy, FIXTURE_LOG: log };
    writeFileSync(
      join(dir, "gateway.yaml"),
      `listen: { port: 0 }
policy: policy.yaml
audit: audit.jsonl
pins: pins.jsonl
servers:
  interop: { command: ${JSON.stringify(process.execPath)}, args: ${JSON.stringify(INTEROP)}, env: ${JSON.stringify(env)} }
tokens:
  - { token: ${TOKEN}, agent: { id: tester } }
`,
    );
    gateway = spawn(process.execPath, [...CLI, "mcp", "gateway", "-c", join(dir, "gateway.yaml")], {
      env: { ...(process.env as Record<string, string>), TOOLWARDEN_AUDIT_KEY: AUDIT_KEY },
      stdio: ["ignore", "pipe", "pipe"],
    });
    gateway.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8");
    });
    await until(() => /listening on (\S+)/.test(stderr), `the gateway to listen:\n${stderr}`, 30_000);
    const url = (/listening on (\S+)/.exec(stderr) as RegExpExecArray)[1];
    client = await httpClient(cell.client, url, TOKEN);
  });

  afterAll(async () => {
    await client?.close().catch(() => {});
    if (gateway && gateway.exitCode === null) {
      const exited = new Promise((resolve) => gateway.once("exit", resolve));
      gateway.kill("SIGTERM");
      await exited;
    }
  });

  interopChecks(
    () => ({ client: () => client, tool: (name) => `interop__${name}`, log }),
    cell.era,
    cell.elicits,
  );

  it("audits the decisions with the agent, resource reads and prompts included", async () => {
    await until(
      () => readJsonl(join(dir, "audit.jsonl")).some((r) => r.tool === "prompts/get"),
      "the audit records",
    );
    const rows = readJsonl(join(dir, "audit.jsonl"))
      .filter((r) => r.kind === "decision")
      .map((r) => [r.agent, r.tool, r.server, r.verdict]);
    expect(rows).toEqual(
      expect.arrayContaining([
        ["tester", "echo", "interop", "allow"],
        ["tester", "huge", "interop", "deny"],
        ["tester", "resources/read", "interop", "allow"],
        ["tester", "resources/read", "interop", "deny"],
        ["tester", "prompts/get", "interop", "allow"],
      ]),
    );
  });
});

describe("the gateway in front of a stateful 2025 HTTP server", () => {
  const dir = tempDir();
  const children: ChildProcess[] = [];
  const clients: AnyClient[] = [];
  let url = "";

  beforeAll(async () => {
    const server = spawn(process.execPath, FIXTURE("stateful-http-server.ts"), {
      stdio: ["ignore", "pipe", "inherit"],
    });
    children.push(server);
    let out = "";
    server.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString("utf8");
    });
    await until(() => /listening (\S+)/.test(out), "the stateful server to listen");
    const upstream = (/listening (\S+)/.exec(out) as RegExpExecArray)[1];
    writeFileSync(join(dir, "policy.yaml"), "version: 1\ndefault: allow\n");
    writeFileSync(
      join(dir, "gateway.yaml"),
      `listen: { port: 0 }
policy: policy.yaml
pins: pins.jsonl
servers:
  counter: { url: ${JSON.stringify(upstream)} }
tokens:
  - { token: ${TOKEN}, agent: { id: tester } }
`,
    );
    const gateway = spawn(process.execPath, [...CLI, "mcp", "gateway", "-c", join(dir, "gateway.yaml")], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(gateway);
    let stderr = "";
    gateway.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8");
    });
    await until(() => /listening on (\S+)/.test(stderr), `the gateway to listen:\n${stderr}`, 30_000);
    url = (/listening on (\S+)/.exec(stderr) as RegExpExecArray)[1];
  });

  afterAll(async () => {
    await Promise.allSettled(clients.map((client) => client.close()));
    for (const child of children) {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        await exited;
      }
    }
  });

  it("gives each client session its own upstream session", async () => {
    const first = await httpClient("v1", url, TOKEN);
    const second = await httpClient("v1", url, TOKEN);
    clients.push(first, second);
    const count = async (client: AnyClient) => text(await client.callTool({ name: "counter__count" }));
    expect(await count(first)).toBe("1");
    expect(await count(first)).toBe("2");
    expect(await count(second)).toBe("1");
    expect(await count(first)).toBe("3");
  });
});

describe("the gateway when an upstream dies", () => {
  const dir = tempDir();
  let gateway: ChildProcess;
  let stderr = "";

  afterAll(async () => {
    if (gateway && gateway.exitCode === null) {
      const exited = new Promise((resolve) => gateway.once("exit", resolve));
      gateway.kill("SIGTERM");
      await exited;
    }
  });

  it("answers the pending call with an error naming the exit, and logs it", async () => {
    writeFileSync(join(dir, "policy.yaml"), "version: 1\ndefault: allow\n");
    writeFileSync(
      join(dir, "gateway.yaml"),
      `listen: { port: 0 }
policy: policy.yaml
pins: pins.jsonl
servers:
  interop: { command: ${JSON.stringify(process.execPath)}, args: ${JSON.stringify(INTEROP)}, env: { SDK: v1 } }
tokens:
  - { token: ${TOKEN}, agent: { id: tester } }
`,
    );
    gateway = spawn(process.execPath, [...CLI, "mcp", "gateway", "-c", join(dir, "gateway.yaml")], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    gateway.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8");
    });
    await until(() => /listening on (\S+)/.test(stderr), `the gateway to listen:\n${stderr}`, 30_000);
    const client = await httpClient("v2", (/listening on (\S+)/.exec(stderr) as RegExpExecArray)[1], TOKEN);
    await expect(client.callTool({ name: "interop__crash" })).rejects.toThrow(
      /toolwarden: server `interop` exited with code 3; the request was not answered/,
    );
    await until(() => stderr.includes("server `interop` exited with code 3"), "the gateway's log line");
    await client.close();
  });
});
