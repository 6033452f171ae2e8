import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PinLedger } from "../../src/adapters/mcp/index.js";
import { Warden } from "../../src/gateway/index.js";
import { AUDIT_KEY, CLI, EVERYTHING, FIXTURE, tempDir } from "./helpers.js";

interface ScanJson {
  flagged: number;
  servers: Array<{
    id: string;
    clients: string[];
    status: string;
    error?: string;
    tools: Array<{ name: string; level: string; capabilities: string[]; findings: Array<{ code: string }> }>;
  }>;
}

describe("mcp scan", () => {
  it("reads client configs, starts each server, flags risky tools, writes a policy and pins", async () => {
    const dir = tempDir();
    const node = JSON.stringify(process.execPath);
    const claude = join(dir, "claude_desktop_config.json");
    writeFileSync(
      claude,
      JSON.stringify({
        mcpServers: {
          weather: {
            command: process.execPath,
            args: FIXTURE("rug-pull-server.ts"),
            env: { POISONED: "1", EXTRA_TOOL: "send_emaiI" },
          },
          web: { command: process.execPath, args: FIXTURE("web-server.ts") },
          off: { command: "does-not-matter", disabled: true },
        },
      }),
    );
    const vscode = join(dir, "mcp.json");
    writeFileSync(
      vscode,
      `{
  // VS Code workspace servers: JSON with comments
  "servers": {
    "everything": { "type": "stdio", "command": ${node}, "args": ${JSON.stringify(EVERYTHING)} },
    "web": { "type": "stdio", "command": ${node}, "args": ${JSON.stringify(FIXTURE("web-server.ts"))} },
    "legacy": { "type": "sse", "url": "http://127.0.0.1:1/sse" },
  },
}`,
    );
    const policy = join(dir, "policy.yaml");
    const pins = join(dir, "pins.jsonl");
    const run = spawnSync(
      process.execPath,
      [
        ...CLI,
        "mcp",
        "scan",
        claude,
        vscode,
        "--json",
        "--write-policy",
        policy,
        "--write-pins",
        "--pins",
        pins,
      ],
      {
        env: { ...process.env, TOOLWARDEN_AUDIT_KEY: AUDIT_KEY },
        encoding: "utf8",
      },
    );
    expect(run.status, run.stderr).toBe(1);
    expect(run.stderr).toMatch(/scanning 6 servers from 2 config files/);
    expect(run.stderr).toMatch(/\[\d\/5\] weather: 3 tools/);

    const report = JSON.parse(run.stdout) as ScanJson;
    const servers = Object.fromEntries(report.servers.map((s) => [s.id, s]));
    expect(Object.keys(servers).sort()).toEqual(["everything", "legacy", "off", "weather", "web"]);
    expect(servers.web.clients).toEqual(["file"]);
    expect(servers.off).toMatchObject({ status: "skipped", error: "disabled in the client config" });
    expect(servers.legacy).toMatchObject({ status: "skipped", error: "legacy SSE transport (not scanned)" });
    const tool = (server: string, name: string) => servers[server].tools.find((t) => t.name === name);
    expect(tool("weather", "get_weather")).toMatchObject({ level: "high" });
    expect(tool("weather", "get_weather")?.findings.map((f) => f.code)).toEqual(
      expect.arrayContaining(["description.instructions", "description.sensitive"]),
    );
    expect(tool("weather", "send_emaiI")?.findings.map((f) => f.code)).toContain("name.shadowing");
    expect(tool("web", "send_email")).toMatchObject({ level: "medium", capabilities: ["send"] });
    expect(tool("web", "send_email")?.findings.map((f) => f.code)).toEqual([
      "capability.send",
      "name.imitated",
    ]);
    expect(tool("web", "fetch_page")?.capabilities).toEqual(["network"]);
    expect(tool("everything", "echo")?.level).toBe("none");
    expect(report.flagged).toBe(2);

    // The starting policy loads and decides the way the scan suggests.
    const warden = Warden.fromFile(policy);
    const verdict = (server: string, name: string) =>
      warden.evaluate({ tool: name, server, args: {} }).verdict;
    expect(verdict("weather", "get_weather")).toBe("deny");
    expect(verdict("weather", "send_emaiI")).toBe("deny");
    expect(verdict("web", "send_email")).toBe("ask");
    expect(verdict("web", "fetch_page")).toBe("allow");
    expect(verdict("everything", "echo")).toBe("allow");
    expect(verdict("everything", "not-scanned")).toBe("ask");
    expect(readFileSync(policy, "utf8")).toMatch(/^# Starting policy written by `toolwarden mcp scan`/);
    expect(warden.policy.loaded.policy.servers?.web?.tools?.fetch_page?.produces).toEqual(["untrusted"]);

    // Pins: everything but the flagged tools.
    const ledger = await PinLedger.open(pins, { key: AUDIT_KEY });
    expect(ledger.get("web", "fetch_page")?.by).toBe("scan");
    expect(ledger.get("weather", "rug_pull")).toBeDefined();
    expect(ledger.get("weather", "get_weather")).toBeUndefined();
    expect(ledger.get("weather", "send_emaiI")).toBeUndefined();
  });
});
