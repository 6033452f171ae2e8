import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { Warden } from "../../gateway/index.js";
import { defaultConfigLocations, readClientConfig } from "./client-configs.js";
import { defaultPinsPath } from "./pins.js";
import { assessTool } from "./risk.js";
import { type ScannedServer, starterPolicy } from "./scan.js";
import { cliPath } from "../../../test/setup/built-cli.js";

const ROOT = resolve(import.meta.dirname, "..", "..", "..");
const dir = mkdtempSync(join(tmpdir(), "tw-mcp-first-hour-"));
function write(name: string, text: string): string {
  const file = join(dir, name);
  mkdirSync(join(file, ".."), { recursive: true });
  writeFileSync(file, text);
  return file;
}

describe("mcp proxy: audit and pins by default", () => {
  it("pins live in a per-user location, not under the client's working directory", () => {
    expect(defaultPinsPath({ HOME: "/home/ann" }, "/home/ann")).toBe(
      "/home/ann/.local/state/toolwarden/pins.jsonl",
    );
    expect(defaultPinsPath({ XDG_STATE_HOME: "/x/state" }, "/home/ann")).toBe(
      "/x/state/toolwarden/pins.jsonl",
    );
    expect(defaultPinsPath({ TOOLWARDEN_PINS: "/p/pins.jsonl" }, "/home/ann")).toBe("/p/pins.jsonl");
  });

  it("warns on start when it audits nothing, and uses the per-user pins file", () => {
    const home = join(dir, "home");
    const policy = write("p.yaml", "version: 1\nallow: ['*']\n");
    const run = spawnSync(
      process.execPath,
      [cliPath(), "mcp", "proxy", "-p", policy, "--", process.execPath, "-e", ""],
      {
        cwd: ROOT,
        encoding: "utf8",
        input: "",
        timeout: 60_000,
        env: {
          ...process.env,
          HOME: home,
          XDG_STATE_HOME: "",
          TOOLWARDEN_PINS: "",
          TOOLWARDEN_AUDIT_KEY: "",
        },
      },
    );
    expect(run.stderr).toMatch(/no --audit LOG: decisions are not audited/);
  }, 90_000);
});

describe("mcp scan finds Claude Code's configs and scopes file tools", () => {
  it("lists ~/.claude.json and the project's .mcp.json", () => {
    const files = defaultConfigLocations({ home: "/home/ann", cwd: "/work/app", platform: "linux", env: {} })
      .filter((l) => l.client === "claude-code")
      .map((l) => l.file);
    expect(files).toEqual(["/home/ann/.claude.json", "/work/app/.mcp.json"]);
  });

  it("reads user servers and this project's servers from ~/.claude.json", () => {
    const file = write(
      "claude.json",
      JSON.stringify({
        mcpServers: { web: { type: "stdio", command: "web-mcp" } },
        projects: {
          "/work/app": {
            mcpServers: {
              fs: { command: "npx", args: ["-y", "@modelcontextprotocol/server-filesystem", "/work/app"] },
            },
          },
          "/elsewhere": { mcpServers: { other: { command: "other-mcp" } } },
        },
      }),
    );
    const servers = readClientConfig(file, "claude-code", {}, { cwd: "/work/app" });
    expect(servers.map((s) => s.id).sort()).toEqual(["fs", "web"]);
  });

  it("the starting policy scopes file tools to the roots the server was started with", () => {
    const listed = [
      {
        name: "read_text_file",
        description: "Read the complete contents of a file from the file system.",
        inputSchema: { type: "object", properties: { path: { type: "string" } }, required: ["path"] },
      },
      {
        name: "get_time",
        description: "Returns the time.",
        inputSchema: { type: "object", properties: { zone: { type: "string" } } },
      },
    ];
    const server = {
      id: "fs",
      clients: ["claude-code"],
      files: [],
      ms: 1,
      status: "ok",
      roots: ["/work/app"],
      tools: listed.map((t) => {
        const risk = assessTool(t as never);
        return { name: t.name, description: t.description, ...risk, findings: [...risk.findings], listed: t };
      }),
    } as unknown as ScannedServer;
    const text = starterPolicy([server]);
    const policy = parse(text);
    expect(policy.tools.read_text_file.args.path).toEqual({ path: { within: ["/work/app"] } });
    expect(policy.tools.get_time).toBeUndefined();
    const warden = Warden.fromText(text);
    expect(
      warden.evaluate({ tool: "read_text_file", server: "fs", args: { path: "/etc/passwd" } }).verdict,
    ).toBe("deny");
    expect(
      warden.evaluate({ tool: "read_text_file", server: "fs", args: { path: "/work/app/a.txt" } }).verdict,
    ).toBe("allow");
  });
});
