import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { describe, expect, it } from "vitest";
import { loadGatewayConfig, McpGateway } from "../../src/adapters/mcp/index.js";
import { EVERYTHING, tempDir } from "./helpers.js";

const TOKEN = "hide-denied-token-0123456789";

/** Starts a gateway in front of the reference "everything" server and returns the tool names a client sees. */
async function listedThrough(policy: string): Promise<string[]> {
  const dir = tempDir("tw-hide-");
  writeFileSync(join(dir, "policy.yaml"), policy);
  writeFileSync(
    join(dir, "gateway.yaml"),
    [
      "policy: ./policy.yaml",
      "pins: ./pins.jsonl",
      "listen: { port: 0 }",
      "servers:",
      `  everything: { command: ${JSON.stringify(process.execPath)}, args: ${JSON.stringify(EVERYTHING)} }`,
      "tokens:",
      `  - { token: ${TOKEN}, agent: { id: bot } }`,
    ].join("\n"),
  );
  const gateway = await McpGateway.start(loadGatewayConfig(join(dir, "gateway.yaml")));
  const client = new Client({ name: "hide-test", version: "1.0.0" }, { capabilities: {} });
  try {
    await client.connect(
      new StreamableHTTPClientTransport(new URL(gateway.url), {
        requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } },
      }),
    );
    const { tools } = await client.listTools();
    return tools.map((tool) => tool.name);
  } finally {
    await client.close().catch(() => {});
    await gateway.close();
  }
}

describe("tools the policy denies outright are hidden from tools/list", () => {
  it("the gateway hides them by default; `hide_denied: false` shows them", async () => {
    const policy = "version: 1\ndefault: allow\ndeny: [get-env]\n";
    const hidden = await listedThrough(policy);
    expect(hidden).toContain("everything__echo");
    expect(hidden).not.toContain("everything__get-env");
    const shown = await listedThrough(`${policy}servers:\n  everything: { hide_denied: false }\n`);
    expect(shown).toContain("everything__get-env");
  }, 120_000);

  it("a tool denied only for some arguments stays listed", async () => {
    const listed = await listedThrough(
      "version: 1\ndefault: deny\nallow: [echo]\nrules:\n  - { name: no-long, when: { tool: echo, args.message: { regex: '.{100}' } }, verdict: deny }\n",
    );
    expect(listed).toContain("everything__echo");
    // Everything else falls to `default: deny` with no rule that could allow it: hidden.
    expect(listed).not.toContain("everything__get-env");
  }, 120_000);
});
