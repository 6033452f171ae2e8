// biome-ignore-all lint/suspicious/noTemplateCurlyInString: configs spell `${VAR}` placeholders literally
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { defaultConfigLocations, existingConfigLocations, readClientConfig } from "./client-configs.js";

function write(dir: string, name: string, text: string): string {
  const file = join(dir, name);
  mkdirSync(join(file, ".."), { recursive: true });
  writeFileSync(file, text);
  return file;
}

describe("readClientConfig", () => {
  const dir = mkdtempSync(join(tmpdir(), "tw-client-configs-"));
  const env = { HOME: "/home/ann", TOKEN: "secret" };

  it("reads Claude Desktop / Cursor / Windsurf `mcpServers`", () => {
    const file = write(
      dir,
      "claude.json",
      JSON.stringify({
        mcpServers: {
          fs: {
            command: "npx",
            args: ["-y", "@modelcontextprotocol/server-filesystem", "${HOME}/docs"],
            env: { KEY: "${TOKEN}" },
          },
          remote: { url: "https://mcp.example/mcp", headers: { Authorization: "Bearer ${env:TOKEN}" } },
          windsurf: { serverUrl: "https://ws.example/mcp" },
          old: { url: "https://legacy.example/sse" },
          off: { command: "x", disabled: true },
        },
      }),
    );
    const servers = readClientConfig(file, "claude-desktop", env);
    expect(servers.map((s) => [s.id, s.spec, s.problem, s.disabled])).toEqual([
      [
        "fs",
        {
          command: "npx",
          args: ["-y", "@modelcontextprotocol/server-filesystem", "/home/ann/docs"],
          env: { KEY: "secret" },
          cwd: undefined,
        },
        undefined,
        undefined,
      ],
      [
        "remote",
        { url: "https://mcp.example/mcp", headers: { Authorization: "Bearer secret" } },
        undefined,
        undefined,
      ],
      ["windsurf", { url: "https://ws.example/mcp", headers: undefined }, undefined, undefined],
      ["old", undefined, "legacy SSE transport (not scanned)", undefined],
      ["off", { command: "x", args: [], env: undefined, cwd: undefined }, undefined, true],
    ]);
    expect(servers[0]).toMatchObject({ client: "claude-desktop", file });
  });

  it("reads VS Code `mcp.json` (servers, comments, trailing commas) and `settings.json` (mcp.servers)", () => {
    const mcpJson = write(
      dir,
      ".vscode/mcp.json",
      `{
  // workspace servers
  "inputs": [{ "id": "key", "type": "promptString" }],
  "servers": {
    "gh": { "type": "http", "url": "https://api.example/mcp", },
    "db": { "type": "stdio", "command": "db-mcp", "args": ["--key", "\${input:key}"] },
  },
}`,
    );
    expect(readClientConfig(mcpJson, "vscode", env).map((s) => [s.id, s.spec, s.problem])).toEqual([
      ["gh", { url: "https://api.example/mcp", headers: undefined }, undefined],
      ["db", undefined, "needs an interactive input (`${input:key}`)"],
    ]);
    const settings = write(
      dir,
      "settings.json",
      `{ "editor.fontSize": 14, /* mcp */ "mcp": { "servers": { "s": { "command": "s" } } } }`,
    );
    expect(readClientConfig(settings, "vscode", env).map((s) => s.id)).toEqual(["s"]);
  });

  it("names the line of a syntax error", () => {
    const file = write(dir, "broken.json", `{\n  "mcpServers": {\n    "a": { "command": }\n  }\n}`);
    expect(() => readClientConfig(file)).toThrow(/broken\.json`:3: ValueExpected/);
  });
});

describe("defaultConfigLocations", () => {
  it("knows the Linux and macOS paths of each client", () => {
    const linux = defaultConfigLocations({ home: "/h", platform: "linux", cwd: "/p", env: {} }).map(
      (l) => `${l.client} ${l.file}`,
    );
    expect(linux).toEqual([
      "claude-desktop /h/.config/Claude/claude_desktop_config.json",
      "claude-code /h/.claude.json",
      "claude-code /p/.mcp.json",
      "cursor /h/.cursor/mcp.json",
      "cursor /p/.cursor/mcp.json",
      "vscode /h/.config/Code/User/mcp.json",
      "vscode /h/.config/Code/User/settings.json",
      "vscode /p/.vscode/mcp.json",
      "windsurf /h/.codeium/windsurf/mcp_config.json",
    ]);
    const mac = defaultConfigLocations({ home: "/Users/a", platform: "darwin", cwd: "/p", env: {} });
    expect(mac[0].file).toBe("/Users/a/Library/Application Support/Claude/claude_desktop_config.json");
  });

  it("finds the ones that exist", () => {
    const home = mkdtempSync(join(tmpdir(), "tw-home-"));
    write(home, ".cursor/mcp.json", "{}");
    expect(existingConfigLocations({ home, platform: "linux", cwd: "/nonexistent", env: {} })).toEqual([
      { client: "cursor", file: join(home, ".cursor/mcp.json") },
    ]);
  });
});
