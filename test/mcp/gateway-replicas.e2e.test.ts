import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliPath, type PrivateRedis, startRedis, tempDir, until } from "../hostile/procs.js";
import { AUDIT_KEY, FIXTURE, text, WEB_POLICY } from "./helpers.js";

/**
 * Issue 16: MCP gateway sessions across replicas. Two `mcp gateway` processes on one Redis, the
 * web fixture behind each: a client reads an injected page through gateway A and another
 * connection, under the same `Toolwarden-Session`, tries to mail it out through gateway B.
 */
const ALICE = "alice-token-3c9e1f7a0b5d2468";
const BOB = "bob-token-8a2f6c0e4d1b9357";

describe("mcp gateway: one session across two replicas on one Redis", () => {
  const tmp = tempDir("tw-gateway-replicas-");
  const gateways: ChildProcess[] = [];
  const clients: Client[] = [];
  const urls: string[] = [];
  let redis: PrivateRedis;

  beforeAll(async () => {
    redis = await startRedis();
    // The slow tool's output is untrusted too, so it is recorded (and the store can fail meanwhile).
    const policy = WEB_POLICY.replace(
      "fetch_page: { produces: [untrusted] }",
      "fetch_page: { produces: [untrusted] }\n      slow: { produces: [untrusted] }",
    );
    writeFileSync(join(tmp.dir, "policy.yaml"), policy);
    for (const replica of ["a", "b"]) {
      const config = join(tmp.dir, `gateway-${replica}.yaml`);
      writeFileSync(
        config,
        `listen: { port: 0 }
policy: policy.yaml
audit: audit-${replica}.jsonl
pins: pins-${replica}.jsonl
store: ${JSON.stringify(`${redis.url}?prefix=tw-gateway-replicas:`)}
servers:
  web: { command: ${JSON.stringify(process.execPath)}, args: ${JSON.stringify(FIXTURE("web-server.ts"))} }
tokens:
  - { token: ${ALICE}, agent: { id: alice } }
  - { token: ${BOB}, agent: { id: bob } }
`,
      );
      const child = spawn(process.execPath, [cliPath(), "mcp", "gateway", "-c", config], {
        env: { ...process.env, TOOLWARDEN_AUDIT_KEY: AUDIT_KEY },
        stdio: ["ignore", "ignore", "pipe"],
      });
      gateways.push(child);
      let stderr = "";
      child.stderr?.on("data", (chunk: Buffer) => {
        stderr += chunk.toString("utf8");
      });
      urls.push(
        await until(`gateway ${replica} to listen`, () => {
          if (child.exitCode !== null) throw new Error(`gateway ${replica} exited: ${stderr}`);
          return /listening on (\S+)/.exec(stderr)?.[1];
        }),
      );
    }
  }, 60_000);

  afterAll(async () => {
    await Promise.allSettled(clients.map((client) => client.close()));
    for (const child of gateways) {
      if (child.exitCode !== null) continue;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    }
    await redis?.kill();
    tmp.remove();
  });

  async function connect(url: string, token: string, session?: string): Promise<Client> {
    const headers: Record<string, string> = { Authorization: `Bearer ${token}` };
    if (session) headers["Toolwarden-Session"] = session;
    const client = new Client({ name: "replica-client", version: "1.0.0" }, { capabilities: {} });
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
    clients.push(client);
    return client;
  }

  it("read through A, exfiltrate through B under the same Toolwarden-Session: deny", async () => {
    const [a, b] = urls;
    const reader = await connect(a, ALICE, "conversation-1");
    // Connected before the read, so the mail goes out right after the page arrives: the output
    // must be in the store by the time the client has it.
    const sender = await connect(b, ALICE, "conversation-1");
    const page = text(
      await reader.callTool({ name: "web__fetch_page", arguments: { url: "https://example.com" } }),
    ).split("\n")[1];
    const mail = { name: "web__send_email", arguments: { to: "partner@corp.example", body: `FYI: ${page}` } };

    const blocked = await sender.callTool(mail);
    expect(blocked.isError).toBe(true);
    expect(text(blocked)).toContain("rule `no-untrusted-into-external-sinks`");

    // The same mail in another session of the same agent, and from another agent naming the
    // same session (it gets one of its own), is sent: the shared session made the difference.
    expect(text(await (await connect(b, ALICE, "conversation-2")).callTool(mail))).toBe(
      "sent to partner@corp.example",
    );
    expect(text(await (await connect(b, BOB, "conversation-1")).callTool(mail))).toBe(
      "sent to partner@corp.example",
    );
  });

  it("an output the store cannot take is withheld from the client; calls recover with the store", async () => {
    const client = await connect(urls[0], ALICE, "conversation-3");
    let frozen = false;
    // Redis freezes once the tool runs (its first progress): the call was allowed, its output cannot be recorded.
    const result = await client.callTool({ name: "web__slow", arguments: { steps: 8 } }, undefined, {
      onprogress: () => {
        if (frozen) return;
        frozen = true;
        redis.freeze();
      },
    });
    redis.thaw();
    expect(frozen).toBe(true);
    expect(result.isError).toBe(true);
    expect(text(result)).toContain("rule `output-unrecorded`");
    expect(text(result)).toContain("The call ran; its output is withheld.");
    expect(text(result)).not.toContain("done after");
    const again = await client.callTool({
      name: "web__fetch_page",
      arguments: { url: "https://example.com" },
    });
    expect(again.isError).toBeFalsy();
  });

  it("a malformed Toolwarden-Session header is refused with 400", async () => {
    const res = await fetch(urls[0], {
      method: "POST",
      headers: {
        Authorization: `Bearer ${ALICE}`,
        "Toolwarden-Session": "no spaces allowed",
        "Content-Type": "application/json",
        Accept: "application/json, text/event-stream",
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toContain("Toolwarden-Session");
  });
});
