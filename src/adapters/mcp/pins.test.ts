import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fingerprintChanges, fingerprintTool, PinLedger } from "./pins.js";

const KEY = "k".repeat(32);
const tool = (
  description: string,
  schema: unknown = { type: "object", properties: { a: { type: "string" } } },
) => ({
  name: "get_weather",
  description,
  inputSchema: schema,
});

function tempLedger(): string {
  return join(mkdtempSync(join(tmpdir(), "tw-pins-")), ".toolwarden", "pins.jsonl");
}

describe("fingerprintTool", () => {
  it("hashes the schema canonically (key order does not matter) and the description", () => {
    const a = fingerprintTool("s", tool("x", { b: 1, a: 2 }));
    const b = fingerprintTool("s", tool("x", { a: 2, b: 1 }));
    expect(a).toEqual(b);
    expect(fingerprintChanges(a, fingerprintTool("s", tool("y", { a: 2, b: 1 })))).toEqual(["description"]);
    expect(fingerprintChanges(a, fingerprintTool("s", tool("x", { a: 3, b: 1 })))).toEqual(["input schema"]);
  });
});

describe("PinLedger", () => {
  it("pins, skips an identical pin, revokes, and reads it all back after a restart", async () => {
    const path = tempLedger();
    const ledger = await PinLedger.open(path, { key: KEY });
    expect(await ledger.pin([{ server: "w", tool: tool("v1") }], "first-use")).toHaveLength(1);
    expect(await ledger.pin([{ server: "w", tool: tool("v1") }], "first-use")).toHaveLength(0);
    expect(await ledger.pin([{ server: "w", tool: tool("v2") }], "approve:ann")).toHaveLength(1);
    await ledger.pin([{ server: "x", tool: { name: "other" } }], "scan");
    await ledger.revoke([{ server: "x", tool: "other" }], "revoke:ann");

    const reopened = await PinLedger.open(path, { key: KEY });
    expect(reopened.size).toBe(4);
    expect(reopened.list().map((p) => [p.server, p.tool, p.description, p.by])).toEqual([
      ["w", "get_weather", "v2", "approve:ann"],
    ]);
    expect(reopened.get("x", "other")).toBeUndefined();
  });

  const tampering: Array<[string, (lines: string[]) => string[], RegExp]> = [
    ["an edited description", (l) => [l[0].replace('"v1"', '"evil"'), ...l.slice(1)], /hash does not match/],
    ["a deleted line", (l) => [l[0], l[2]], /chain is broken/],
    ["reordered lines", (l) => [l[1], l[0], l[2]], /chain is broken/],
    [
      "a re-hashed line without the key",
      (l) => {
        const entry = JSON.parse(l[2]);
        entry.hmac = "0".repeat(64);
        return [l[0], l[1], JSON.stringify(entry)];
      },
      /bad signature/,
    ],
  ];
  it.each(tampering)("refuses to load a ledger with %s", async (_, edit, message) => {
    const path = tempLedger();
    const ledger = await PinLedger.open(path, { key: KEY });
    await ledger.pin([{ server: "w", tool: tool("v1") }], "a");
    await ledger.pin([{ server: "w", tool: tool("v2") }], "b");
    await ledger.pin([{ server: "w", tool: tool("v3") }], "c");
    const lines = readFileSync(path, "utf8").trim().split("\n");
    writeFileSync(path, `${edit(lines).join("\n")}\n`);
    await expect(PinLedger.open(path, { key: KEY })).rejects.toThrow(message);
  });

  it("refuses a signed ledger without the key, and one signed with another key", async () => {
    const path = tempLedger();
    await (await PinLedger.open(path, { key: KEY })).pin([{ server: "w", tool: tool("v1") }], "a");
    await expect(PinLedger.open(path, { env: {} })).rejects.toThrow(/is signed/);
    await expect(PinLedger.open(path, { key: "z".repeat(32) })).rejects.toThrow(/bad signature/);
  });

  it("cuts a torn last line before appending", async () => {
    const path = tempLedger();
    const ledger = await PinLedger.open(path, { key: KEY });
    await ledger.pin([{ server: "w", tool: tool("v1") }], "a");
    writeFileSync(path, `${readFileSync(path, "utf8")}{"seq":2,"tor`);
    const again = await PinLedger.open(path, { key: KEY });
    await again.pin([{ server: "w", tool: tool("v2") }], "b");
    expect((await PinLedger.open(path, { key: KEY })).size).toBe(2);
  });

  it("keeps one chain when two processes pin at the same time", async () => {
    const path = tempLedger();
    await PinLedger.open(path, { key: KEY });
    const writer = `
      const { PinLedger } = await import(${JSON.stringify(new URL("./pins.ts", import.meta.url).pathname)});
      const ledger = await PinLedger.open(process.argv[1], { key: ${JSON.stringify(KEY)} });
      for (let i = 0; i < 20; i++) await ledger.pin([{ server: process.argv[2], tool: { name: "t" + i } }], "race");
    `;
    const run = (server: string) =>
      new Promise<number>((resolve, reject) => {
        const child = spawn(
          process.execPath,
          ["--import", "tsx", "--input-type=module", "-e", writer, path, server],
          { stdio: "inherit" },
        );
        child.on("error", reject);
        child.on("exit", (code) => resolve(code ?? 1));
      });
    expect(await Promise.all([run("a"), run("b")])).toEqual([0, 0]);
    const ledger = await PinLedger.open(path, { key: KEY });
    expect(ledger.size).toBe(40);
    expect(ledger.list("a")).toHaveLength(20);
  });
});
