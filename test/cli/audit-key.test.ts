import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadGatewayConfig } from "../../src/adapters/mcp/gateway-config.js";
import { PinLedger } from "../../src/adapters/mcp/pins.js";
import { cliPath } from "../setup/built-cli.js";

const dir = mkdtempSync(join(tmpdir(), "tw-audit-key-"));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const KEY_FILE = file("audit.key", `${"k".repeat(32)}\n`);
const POLICY = file("p.yaml", "version: 1\nallow: [read]\n");
const NO_KEY = { TOOLWARDEN_AUDIT_KEY: "", TOOLWARDEN_AUDIT_KEY_FILE: "" };

function cli(args: string[], env: Record<string, string> = NO_KEY, input = '{"tool":"read"}\n') {
  const result = spawnSync(
    process.execPath,
    [cliPath(), ...args],
    {
      input,
      encoding: "utf8",
      cwd: dir,
      env: { ...process.env, ...env },
    },
  );
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

const WAYS = ["--audit-key-file", "TOOLWARDEN_AUDIT_KEY", "TOOLWARDEN_AUDIT_KEY_FILE", "audit_key_file"];

describe("one way to give the audit key everywhere", () => {
  it("a missing key names every way to give it, and no library option the CLI lacks", () => {
    const missing = cli(["check", "-p", POLICY, "--audit", join(dir, "a.jsonl"), "-"]);
    expect(missing.code).not.toBe(0);
    for (const way of WAYS) expect(missing.stderr).toContain(way);
    expect(missing.stderr).not.toContain("unsigned: true");
    expect(missing.stderr).not.toContain("`keyFile`");
  });

  it("replay and audit verify take --audit-key-file (and --key-file) like every other command", () => {
    const log = join(dir, "r.jsonl");
    const trace = file("trace.jsonl", '{"tool":"read","args":{}}\n');
    expect(cli(["replay", "-p", POLICY, trace, "--audit", log, "--key-file", KEY_FILE]).code).toBe(0);
    expect(cli(["replay", "-p", POLICY, trace, "--audit", log, "--audit-key-file", KEY_FILE]).code).toBe(0);
    expect(cli(["audit", "verify", log, "--audit-key-file", KEY_FILE]).code).toBe(0);
    expect(cli(["audit", "verify", log, "--key-file", KEY_FILE]).code).toBe(0);
  });

  it("--help of every command that writes audit records lists --audit-key-file", () => {
    for (const command of [["check"], ["replay"], ["mcp", "proxy"], ["approvals"], ["serve"], ["audit"]]) {
      expect(cli([...command, "--help"]).stdout, command.join(" ")).toContain("--audit-key-file");
    }
  });

  it("gateway.yaml takes audit_key_file, relative to the file", () => {
    const config = file(
      "gateway.yaml",
      "policy: ./p.yaml\naudit: ./gw.jsonl\naudit_key_file: ./audit.key\nservers:\n  fs: { command: node }\ntokens:\n  - { token: 0123456789abcdef0123, agent: { id: bot } }\n",
    );
    expect(loadGatewayConfig(config, {}).auditKeyFile).toBe(KEY_FILE);
  });

  it("mcp pins list reads a signed ledger without the key", async () => {
    const pins = join(dir, "pins.jsonl");
    const ledger = await PinLedger.open(pins, { keyFile: KEY_FILE });
    await ledger.pin(
      [{ server: "fs", tool: { name: "read_file", inputSchema: { type: "object" } } }],
      "test",
    );
    const listed = cli(["mcp", "pins", "list", "--pins", pins]);
    expect(listed.stderr).toBe("");
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain("read_file");
    expect(listed.stdout).toContain("signatures not checked");
  });
});
