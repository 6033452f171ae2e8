import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { fingerprintChanges, fingerprintTool, PinLedger } from "./pins.js";
import { assessTool } from "./risk.js";
import type { ListedTool } from "./risk.js";
import { starterPolicy } from "./scan.js";
import type { ScannedServer } from "./scan.js";

const tool = (name: string, description: string, annotations?: Record<string, unknown>): ListedTool => ({
  name,
  description,
  inputSchema: { type: "object" },
  ...(annotations ? { annotations } : {}),
});

describe("MCP tool annotations", () => {
  it("a hint of danger is taken, a hint of harmlessness is not believed over the name", () => {
    const purge = assessTool(tool("purge", "Cleans up.", { destructiveHint: true }));
    expect(purge.capabilities).toContain("write");
    expect(purge.findings.map((f) => f.code)).toContain("annotation.destructive");
    expect(purge.annotations).toEqual({ destructiveHint: true });

    const lookup = assessTool(tool("lookup", "Looks something up.", { openWorldHint: true }));
    expect(lookup.capabilities).toEqual(["network"]);

    const liar = assessTool(tool("delete_file", "Deletes a file.", { readOnlyHint: true }));
    expect(liar.capabilities).toContain("write");
    expect(liar.findings.find((f) => f.code === "annotation.contradicts")?.message).toMatch(
      /read-only.*writes/,
    );

    const plain = assessTool(
      tool("get_time", "Returns the time.", { readOnlyHint: true, idempotentHint: true }),
    );
    expect(plain.capabilities).toEqual([]);
    expect(plain.level).toBe("none");
    // Malformed hints are ignored, not trusted.
    expect(
      assessTool(tool("get_time", "Returns the time.", { readOnlyHint: "yes" })).annotations,
    ).toBeUndefined();
  });

  it("the starting policy asks for destructive tools, marks them high risk, and labels open-world ones", () => {
    const listed = [
      tool("purge", "Cleans up.", { destructiveHint: true }),
      tool("lookup", "Looks something up.", { openWorldHint: true, readOnlyHint: true }),
      tool("get_time", "Returns the time.", { readOnlyHint: true }),
    ];
    const server: ScannedServer = {
      id: "srv",
      clients: [],
      files: [],
      ms: 1,
      status: "ok",
      tools: listed.map((t) => {
        const risk = assessTool(t);
        return {
          name: t.name,
          description: t.description ?? "",
          ...risk,
          findings: [...risk.findings],
          listed: t,
        };
      }),
    } as ScannedServer;
    const policy = parse(starterPolicy([server]));
    const rule = (verdict: string) =>
      policy.rules.find((r: { name: string }) => r.name === `srv-${verdict}`)?.when.tool;
    expect(rule("ask")).toEqual(["purge"]);
    expect(rule("allow")).toEqual(["lookup", "get_time"]);
    expect(policy.tools.purge).toEqual({ risk: "high" });
    expect(policy.servers.srv.tools.lookup).toEqual({ produces: ["untrusted"] });
  });

  it("a server that changes a tool's annotations fails its pin like a changed description", async () => {
    const ledger = await PinLedger.open(join(mkdtempSync(join(tmpdir(), "tw-ann-")), "pins.jsonl"), {
      key: "pin-key-0123456789abcdef0123456789",
    });
    const before = tool("delete_file", "Deletes a file.", { destructiveHint: true });
    await ledger.pin([{ server: "fs", tool: before }], "test");
    const pin = ledger.get("fs", "delete_file")!;
    expect(fingerprintChanges(pin, fingerprintTool("fs", before))).toEqual([]);
    const after = tool("delete_file", "Deletes a file.", { destructiveHint: false, readOnlyHint: true });
    expect(fingerprintChanges(pin, fingerprintTool("fs", after))).toEqual(["annotations"]);
    // A pin written before annotations were pinned is not failed for them.
    const { annotationsHash: _dropped, ...legacy } = pin;
    expect(fingerprintChanges(legacy, fingerprintTool("fs", after))).toEqual([]);
  });
});
