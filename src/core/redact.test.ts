import { describe, expect, it } from "vitest";
import { hashValue } from "./canonical.js";
import { auditArgs } from "./redact.js";

const mask = (s: string) => s.replace(/AKIA[0-9A-Z]{16}/g, "[secret]");
const args = {
  to: "bob@example.com",
  amount: 120.5,
  urgent: true,
  note: null,
  body: "key AKIAABCDEFGHIJKLMNOP here",
  tags: ["a", "bb"],
};

describe("auditArgs", () => {
  it("hash mode keeps only the hash of the canonical arguments", () => {
    const result = auditArgs(args, "hash");
    expect(result).toEqual({ argsHash: hashValue(args) });
    // Key order does not change the hash.
    const reordered = Object.fromEntries(Object.entries(args).reverse());
    expect(auditArgs(reordered, "hash").argsHash).toBe(result.argsHash);
  });

  it("hashes missing arguments as {}", () => {
    expect(auditArgs(undefined, "hash").argsHash).toBe(hashValue({}));
  });

  it("redact mode keeps the shape and no string", () => {
    expect(auditArgs(args, "redact").args).toEqual({
      to: "<string:15>",
      amount: 120.5,
      urgent: true,
      note: null,
      body: "<string:29>",
      tags: ["<string:1>", "<string:2>"],
    });
  });

  it("redact mode summarises long arrays and deep nesting", () => {
    const deep = { a: { b: { c: { d: { e: { f: { g: { h: { i: 1 } } } } } } } } };
    const out = auditArgs({ list: Array.from({ length: 53 }, (_, i) => i), deep }, "redact").args as any;
    expect(out.list).toHaveLength(51);
    expect(out.list.at(-1)).toBe("<3 more>");
    expect(JSON.stringify(out.deep)).toContain('"<object:1>"');
  });

  it("full mode masks secrets in values and keys", () => {
    const out = auditArgs({ ...args, AKIAABCDEFGHIJKLMNOP: 1 }, "full", mask).args as any;
    expect(out.body).toBe("key [secret] here");
    expect(out["[secret]"]).toBe(1);
    expect(out.to).toBe("bob@example.com");
  });

  it("full mode without a masker keeps the arguments as JSON", () => {
    expect(auditArgs({ n: 1n, d: new Date(0), u: undefined }, "full").args).toEqual({
      n: "1",
      d: "1970-01-01T00:00:00.000Z",
    });
  });

  it.each(["redact", "full"] as const)("keeps a `__proto__` key as data in %s mode", (mode) => {
    const out = auditArgs(JSON.parse('{"__proto__": {"polluted": "yes"}}'), mode).args as Record<
      string,
      unknown
    >;
    expect(Object.keys(out)).toEqual(["__proto__"]);
    expect((out as { polluted?: unknown }).polluted).toBeUndefined();
  });

  it("does not throw on cycles", () => {
    const cyclic: Record<string, unknown> = { a: "x" };
    cyclic.self = cyclic;
    expect(auditArgs(cyclic, "redact").args).toEqual({ a: "<string:1>", self: "<string:10>" });
  });

  it.each(["redact", "full"] as const)(
    "arguments past the engine's bounds keep their hash and a bounded summary in %s mode",
    (mode) => {
      let deep: unknown = 1;
      for (let i = 0; i < 100_000; i++) deep = { a: deep };
      const out = auditArgs({ x: deep }, mode);
      expect(out.argsHash).toMatch(/^[0-9a-f]{64}$/);
      const args = out.args as Record<string, unknown>;
      expect(args["<unrecorded>"]).toMatch(/nested deeper than 64/);
      expect(JSON.stringify(args).length).toBeLessThan(2_000);
      if (mode === "redact") expect(args["<excerpt>"]).toBeUndefined();
    },
  );
});
