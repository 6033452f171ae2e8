import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliPath } from "../setup/built-cli.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const POLICY = join(ROOT, "examples/support-bot/policy.yaml");

/** Runs the CLI and waits for it to exit on its own (a lingering process fails by the test timeout, and is killed). */
function runToExit(args: string[], cwd: string, env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [cliPath(), ...args], {
    cwd,
    env: { ...process.env, TOOLWARDEN_AUDIT_KEY: "", TOOLWARDEN_AUDIT_KEY_FILE: "", ...env },
  });
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.on("exit", (code) => resolve({ code, stderr })),
  );
  return { child, exited };
}

describe("a fatal start-up error exits non-zero at once", () => {
  let dir: string;
  let busy: Server;
  let port: number;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "tw-fatal-"));
    busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
    port = (busy.address() as { port: number }).port;
  });
  afterAll(() => {
    busy.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("serve on a port in use says so, how to pick another, and exits 1", async () => {
    const { child, exited } = runToExit(
      ["serve", "-p", POLICY, "--port", String(port), "--data", join(dir, "data")],
      dir,
    );
    try {
      const { code, stderr } = await exited;
      expect(code).toBe(1);
      expect(stderr).toContain(`port ${port}`);
      expect(stderr).toContain("in use");
      expect(stderr).toContain("--port");
      expect(stderr).toContain("npm start -- --port");
      expect(stderr).not.toContain("cannot expire approvals");
    } finally {
      child.kill("SIGKILL");
    }
  }, 60_000);

  it("mcp gateway without an audit key exits non-zero", async () => {
    const config = join(dir, "gateway.yaml");
    writeFileSync(
      config,
      [
        `policy: ${POLICY}`,
        `audit: ${join(dir, "gw-audit.jsonl")}`,
        // A Redis connection is a live handle: it kept the failed gateway running.
        "store: redis://127.0.0.1:6379/0",
        `pins: ${join(dir, "pins.jsonl")}`,
        "listen: { port: 0 }",
        "servers:",
        '  fs: { command: node, args: [-e, "setInterval(() => {}, 1000)"] }',
        "tokens:",
        "  - { token: 0123456789abcdef0123, agent: { id: bot } }",
      ].join("\n"),
    );
    const { child, exited } = runToExit(["mcp", "gateway", "-c", config], dir);
    try {
      const { code, stderr } = await exited;
      expect(code).not.toBe(0);
      expect(code).not.toBeNull();
      expect(stderr).toContain("audit key");
    } finally {
      child.kill("SIGKILL");
    }
  }, 60_000);
});
