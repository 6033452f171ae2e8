import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUDIT_KEY, CLI, EVERYTHING, FIXTURE, readJsonl, tempDir, text, until } from "./helpers.js";

const ALICE = "alice-token-7f3a9c2e51b04d68";
const BOB = "bob-token-0b8e44c1d9a2f735";

/** Starts a process and resolves with the first match of `pattern` in its output. */
function startAndWatch(
  args: string[],
  pattern: RegExp,
  options: { env?: Record<string, string>; stream: "stdout" | "stderr" },
) {
  const child = spawn(process.execPath, args, {
    env: { ...(process.env as Record<string, string>), ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const found = new Promise<string>((resolve, reject) => {
    const watch = (chunk: Buffer) => {
      output += chunk.toString("utf8");
      const match = pattern.exec(output);
      if (match) resolve(match[1]);
    };
    child[options.stream].on("data", watch);
    child.on("exit", (code) => reject(new Error(`exited with ${code} before it was ready:\n${output}`)));
  });
  child[options.stream === "stdout" ? "stderr" : "stdout"].on("data", (chunk: Buffer) => {
    output += chunk.toString("utf8");
  });
  return { child, found, output: () => output };
}

async function connect(
  url: string,
  token: string,
): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name: "e2e-http-client", version: "1.0.0" }, { capabilities: {} });
  await client.connect(transport);
  return { client, transport };
}

const INITIALIZE = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
};

function post(url: string, headers: Record<string, string>, body: unknown = INITIALIZE) {
  return fetch(url, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      Accept: "application/json, text/event-stream",
      ...headers,
    },
    body: JSON.stringify(body),
  });
}

describe("mcp gateway: one Streamable HTTP endpoint, bearer tokens, several upstreams", () => {
  const dir = tempDir();
  const started: ChildProcess[] = [];
  let url = "";
  const clients: Client[] = [];

  beforeAll(async () => {
    const web = startAndWatch([...FIXTURE("web-server.ts"), "--http"], /listening (\S+)/, {
      stream: "stdout",
    });
    started.push(web.child);
    const webUrl = await web.found;
    writeFileSync(
      join(dir, "policy.yaml"),
      `version: 1
default: allow
servers:
  web:
    tools:
      fetch_page: { produces: [untrusted] }
tools:
  send_email: { sink: external }
rules:
  - name: interns-do-not-email
    when: { tool: send_email, agent.role: intern }
    verdict: deny
    message: Interns may not send email.
  - name: no-untrusted-into-external-sinks
    when: { sink: external, flows: [untrusted] }
    verdict: deny
    message: Untrusted content may not reach an external sink.
`,
    );
    writeFileSync(
      join(dir, "gateway.yaml"),
      `listen: { port: 0 }
policy: policy.yaml
audit: audit.jsonl
pins: pins.jsonl
servers:
  everything: { command: ${JSON.stringify(process.execPath)}, args: ${JSON.stringify(EVERYTHING)} }
  web: { url: ${JSON.stringify(webUrl)} }
  weather: { command: ${JSON.stringify(process.execPath)}, args: ${JSON.stringify(FIXTURE("rug-pull-server.ts"))} }
tokens:
  - { token: ${ALICE}, agent: { id: alice, role: admin } }
  - { env: BOB_TOKEN, agent: { id: bob, role: intern } }
`,
    );
    const gateway = startAndWatch(
      [...CLI, "mcp", "gateway", "-c", join(dir, "gateway.yaml")],
      /listening on (\S+)/,
      {
        stream: "stderr",
        env: { BOB_TOKEN: BOB, TOOLWARDEN_AUDIT_KEY: AUDIT_KEY },
      },
    );
    started.push(gateway.child);
    url = await gateway.found;
  });

  afterAll(async () => {
    await Promise.allSettled(clients.map((client) => client.close()));
    for (const child of started) {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        await exited;
      }
    }
  });

  it("rejects a request without a token, and one with a wrong token, with 401", async () => {
    const none = await post(url, {});
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe('Bearer realm="toolwarden"');
    expect(await none.json()).toMatchObject({
      error: { message: "unauthorized: a valid bearer token is required" },
    });
    expect((await post(url, { Authorization: `Bearer ${ALICE.slice(0, -1)}x` })).status).toBe(401);
    expect(
      (await post(url, { Authorization: `Basic ${Buffer.from(`alice:${ALICE}`).toString("base64")}` }))
        .status,
    ).toBe(401);
  });

  it("namespaces the tools of every upstream as <server>__<tool>", async () => {
    const { client } = await connect(url, ALICE);
    clients.push(client);
    const names = (await client.listTools()).tools.map((tool) => tool.name);
    expect(names).toEqual(
      expect.arrayContaining([
        "everything__echo",
        "everything__get-sum",
        "web__fetch_page",
        "web__send_email",
        "web__slow",
      ]),
    );
    expect(
      text(await client.callTool({ name: "everything__echo", arguments: { message: "via the gateway" } })),
    ).toBe("Echo: via the gateway");
    const unknown = await client.callTool({ name: "nowhere__echo", arguments: {} });
    expect(unknown.isError).toBe(true);
  });

  it("maps each token to its agent: the policy sees who is calling", async () => {
    const alice = (await connect(url, ALICE)).client;
    const bob = (await connect(url, BOB)).client;
    clients.push(alice, bob);
    const mail = {
      name: "web__send_email",
      arguments: { to: "team@corp.example", body: "Standup moved to 10." },
    };
    expect(text(await alice.callTool(mail))).toBe("sent to team@corp.example");
    const denied = await bob.callTool(mail);
    expect(denied.isError).toBe(true);
    expect(text(denied)).toBe(
      "toolwarden denied `send_email` (rule `interns-do-not-email`): Interns may not send email. The call was not run.",
    );
  });

  it("keeps one session per connection: taint in one does not leak into another", async () => {
    const first = (await connect(url, ALICE)).client;
    const second = (await connect(url, ALICE)).client;
    clients.push(first, second);
    const page = text(
      await first.callTool({ name: "web__fetch_page", arguments: { url: "https://example.com" } }),
    ).split("\n")[1];
    const mail = { name: "web__send_email", arguments: { to: "partner@corp.example", body: `FYI: ${page}` } };
    const blocked = await first.callTool(mail);
    expect(blocked._meta?.["toolwarden/decision"]).toMatchObject({
      verdict: "deny",
      rule: "no-untrusted-into-external-sinks",
    });
    expect(text(await second.callTool(mail))).toBe("sent to partner@corp.example");
  });

  it("binds a session to the token that opened it", async () => {
    const { client, transport } = await connect(url, ALICE);
    clients.push(client);
    const hijack = await post(
      url,
      {
        Authorization: `Bearer ${BOB}`,
        "mcp-session-id": transport.sessionId as string,
        "mcp-protocol-version": "2025-06-18",
      },
      {
        jsonrpc: "2.0",
        id: 2,
        method: "tools/list",
        params: {},
      },
    );
    expect(hijack.status).toBe(403);
    expect(
      (
        await post(
          url,
          { Authorization: `Bearer ${ALICE}`, "mcp-session-id": "no-such-session" },
          { jsonrpc: "2.0", id: 3, method: "tools/list" },
        )
      ).status,
    ).toBe(404);
  });

  it("re-checks an upstream's tools on tools/list_changed and tells every session", async () => {
    const watcher = (await connect(url, BOB)).client;
    const actor = (await connect(url, ALICE)).client;
    clients.push(watcher, actor);
    let changed = 0;
    watcher.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      changed++;
    });
    expect(text(await actor.callTool({ name: "weather__get_weather", arguments: { city: "Lima" } }))).toBe(
      "Sunny in Lima",
    );
    await actor.callTool({ name: "weather__rug_pull", arguments: {} });
    await until(() => changed > 0, "tools/list_changed to reach the other session");
    const names = (await watcher.listTools()).tools.map((tool) => tool.name);
    expect(names).toContain("weather__rug_pull");
    expect(names).not.toContain("weather__get_weather");
    const denied = await actor.callTool({ name: "weather__get_weather", arguments: { city: "Lima" } });
    expect(denied._meta?.["toolwarden/decision"]).toMatchObject({ verdict: "deny", rule: "pin.changed" });
  });

  it("audits decisions with the agent and the server", async () => {
    const audit = readJsonl(join(dir, "audit.jsonl")).filter((r) => r.kind === "decision");
    const rows = audit.map((r) => [r.agent, r.server, r.tool, r.verdict]);
    expect(rows).toEqual(
      expect.arrayContaining([
        ["alice", "everything", "echo", "allow"],
        ["alice", "web", "send_email", "allow"],
        ["bob", "web", "send_email", "deny"],
      ]),
    );
    const pins = readJsonl(join(dir, "audit.jsonl")).filter(
      (r) => r.kind === "pin" && r.rule === "pin.changed",
    );
    expect(pins.map((r) => [r.server, r.tool, r.agent ?? null])).toEqual([
      ["weather", "get_weather", null],
      ["weather", "get_weather", "alice"],
    ]);
  });
});
