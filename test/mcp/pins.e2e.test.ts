import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { describe, expect, it } from "vitest";
import { PinLedger } from "../../src/adapters/mcp/index.js";
import { HONEST, POISONED } from "./fixtures/rug-pull-server.js";
import { AUDIT_KEY, CLI, FIXTURE, proxied, tempDir, text, until } from "./helpers.js";

const env = { ...(process.env as Record<string, string>), TOOLWARDEN_AUDIT_KEY: AUDIT_KEY };

function cli(args: string[], extraEnv: Record<string, string> = {}) {
  const run = spawnSync(process.execPath, [...CLI, "mcp", ...args], {
    env: { ...env, ...extraEnv },
    encoding: "utf8",
  });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

// Each case starts the proxy and the CLI several times (each a TypeScript start-up): slow on a busy machine.
describe("tool pinning through the proxy", { timeout: 120_000 }, () => {
  const dir = tempDir();
  const ledger = join(dir, "pins.jsonl");

  it("catches a rug pull: the changed tool disappears from the list and its calls are denied", async () => {
    const proxy = await proxied({
      dir,
      serverId: "weather",
      server: FIXTURE("rug-pull-server.ts"),
      policy: "version: 1\ndefault: allow\n",
    });
    try {
      let changed = 0;
      proxy.client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
        changed++;
      });
      const before = (await proxy.client.listTools()).tools;
      expect(before.map((t) => [t.name, t.description])).toEqual([
        ["get_weather", HONEST],
        ["rug_pull", "Test hook: changes get_weather."],
      ]);
      expect(text(await proxy.client.callTool({ name: "get_weather", arguments: { city: "Oslo" } }))).toBe(
        "Sunny in Oslo",
      );

      await proxy.client.callTool({ name: "rug_pull", arguments: {} });
      await until(() => changed > 0, "tools/list_changed to reach the client");
      expect((await proxy.client.listTools()).tools.map((t) => t.name)).toEqual(["rug_pull"]);
      const denied = await proxy.client.callTool({ name: "get_weather", arguments: { city: "Oslo" } });
      expect(denied.isError).toBe(true);
      expect(text(denied)).toBe(
        "toolwarden denied `get_weather` (rule `pin.changed`): tool `get_weather` on server `weather` changed its description since it was pinned (possible rug pull). The call was not run.",
      );
    } finally {
      await proxy.close();
    }
    const pinEvents = proxy.audit().filter((r) => r.kind === "pin");
    expect(pinEvents.map((r) => [r.tool, r.rule, r.verdict])).toEqual([
      ["get_weather", "pin.first_use", "allow"],
      ["rug_pull", "pin.first_use", "allow"],
      ["get_weather", "pin.changed", "deny"],
      ["get_weather", "pin.changed", "deny"],
    ]);
    expect(pinEvents[2].data).toMatchObject({ changed: ["description"], description: POISONED });
  });

  it("with `pins: ask`, shows the pinned version and asks; `mcp pins approve` pins the new one", async () => {
    const proxy = await proxied({
      dir,
      serverId: "weather",
      server: FIXTURE("rug-pull-server.ts"),
      env: { POISONED: "1" },
      policy: "version: 1\ndefault: allow\nservers:\n  weather: { pins: ask }\n",
    });
    try {
      const listed = (await proxy.client.listTools()).tools.find((t) => t.name === "get_weather");
      expect(listed?.description).toBe(HONEST);
      const asked = await proxy.client.callTool({ name: "get_weather", arguments: { city: "Oslo" } });
      expect(asked.isError).toBe(true);
      expect(asked._meta?.["toolwarden/decision"]).toMatchObject({ verdict: "ask", rule: "pin.changed" });
      expect(text(asked)).toMatch(
        /held `get_weather` for human approval \(rule `pin.changed`\): .*changed its description.*approval [0-9a-f-]{36} is pending\. The call was not run; once a human approves it, the same call may be retried\./,
      );

      const approve = cli(
        [
          "pins",
          "approve",
          "--server-id",
          "weather",
          "--tool",
          "get_weather",
          "--pins",
          ledger,
          "--by",
          "ann",
          "--",
          process.execPath,
          ...FIXTURE("rug-pull-server.ts"),
        ],
        {
          POISONED: "1",
        },
      );
      expect(approve.stderr).toBe("");
      expect(approve.stdout).toBe(
        "~ get_weather: description changed; pinning the new version\npinned 1 of 2 tools of `weather`\n",
      );
      expect(approve.code).toBe(0);

      // The ledger is re-read on the next listing: the approved version is now the pinned one.
      const relisted = (await proxy.client.listTools()).tools.find((t) => t.name === "get_weather");
      expect(relisted?.description).toBe(POISONED);
      expect(text(await proxy.client.callTool({ name: "get_weather", arguments: { city: "Oslo" } }))).toBe(
        "Sunny in Oslo",
      );
    } finally {
      await proxy.close();
    }
  });

  it("revokes and lists pins from the command line", async () => {
    expect(
      cli(["pins", "revoke", "--server-id", "weather", "--tool", "rug_pull", "--pins", ledger]).stdout,
    ).toBe("revoked 1 pins of `weather`\n");
    const list = cli(["pins", "list", "--pins", ledger]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(
      /\nweather +get_weather +[0-9a-f]{12} +[0-9a-f]{12} +approve:ann +\S+\n1 pins in .* \(4 entries, signed\)\n$/,
    );
    const pins = await PinLedger.open(ledger, { key: AUDIT_KEY });
    expect(pins.list().map((p) => [p.server, p.tool, p.by, p.description])).toEqual([
      ["weather", "get_weather", "approve:ann", POISONED],
    ]);
  });

  it("refuses a ledger that was edited by hand", () => {
    const edited = cli(["pins", "list", "--pins", ledger], {
      TOOLWARDEN_AUDIT_KEY: "another-key-0123456789abcdef",
    });
    expect(edited.code).toBe(1);
    expect(edited.stderr).toMatch(/^toolwarden mcp: pin ledger `.*` entry 1: bad signature/);
  });
});
