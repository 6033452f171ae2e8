import { describe, expect, it } from "vitest";
import { HONEST, POISONED } from "../mcp/fixtures/rug-pull-server.js";
import { FIXTURE, proxied, tempDir, text } from "../mcp/helpers.js";

describe("mcp proxy --observe and tool pins", { timeout: 120_000 }, () => {
  it("a rug pull is audited as the denial it would be, but the tool stays listed and its calls run", async () => {
    const dir = tempDir("tw-observe-pins-");
    const policy = "version: 1\ndefault: allow\n";
    const first = await proxied({ dir, serverId: "weather", server: FIXTURE("rug-pull-server.ts"), policy });
    expect((await first.client.listTools()).tools.find((t) => t.name === "get_weather")?.description).toBe(
      HONEST,
    );
    await first.close();

    const observed = await proxied({
      dir,
      serverId: "weather",
      server: FIXTURE("rug-pull-server.ts"),
      policy,
      env: { POISONED: "1" },
      flags: ["--observe"],
    });
    try {
      const listed = (await observed.client.listTools()).tools.find((t) => t.name === "get_weather");
      expect(listed?.description).toBe(POISONED);
      const result = await observed.client.callTool({ name: "get_weather", arguments: { city: "Oslo" } });
      expect(result.isError ?? false).toBe(false);
      expect(text(result)).toBe("Sunny in Oslo");
    } finally {
      await observed.close();
    }
    const atCall = observed
      .audit()
      .filter(
        (r) =>
          r.kind === "pin" && r.rule === "pin.changed" && (r.data as { phase?: string })?.phase === "call",
      );
    expect(atCall).toHaveLength(1);
    expect(atCall[0]).toMatchObject({ verdict: "deny", enforced: false, tool: "get_weather" });
  });
});
