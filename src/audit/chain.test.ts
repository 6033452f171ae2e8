import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  canonicalJson,
  GENESIS,
  hmacHex,
  recordHash,
  resolveAuditKey,
  sealRecord,
  signingKey,
  ZERO_HASH,
} from "./chain.js";
import { AuditKeyError } from "./errors.js";

describe("canonicalJson", () => {
  it.each([
    [
      "sorted keys, no whitespace",
      { b: 1, a: [1, "x"], c: { z: true, y: null } },
      '{"a":[1,"x"],"b":1,"c":{"y":null,"z":true}}',
    ],
    ["undefined dropped from objects", { a: undefined, b: 1 }, '{"b":1}'],
    ["undefined becomes null in arrays", [undefined, () => 1], "[null,null]"],
    ["NaN and Infinity become null", [Number.NaN, Number.POSITIVE_INFINITY, -0], "[null,null,0]"],
    ["bigint becomes a string", { n: 12345678901234567890n }, '{"n":"12345678901234567890"}'],
    ["dates use toJSON", { d: new Date("2025-01-02T03:04:05.000Z") }, '{"d":"2025-01-02T03:04:05.000Z"}'],
    ["unicode keys sort by code unit", { é: 1, z: 2, Z: 3 }, '{"Z":3,"z":2,"é":1}'],
    ["strings are escaped", { s: 'a"\n\u2028' }, '{"s":"a\\"\\n\u2028"}'],
    ["top-level undefined is null", undefined, "null"],
  ])("%s", (_name, value, expected) => {
    expect(canonicalJson(value)).toBe(expected);
  });

  it("marks cycles instead of throwing", () => {
    const a: Record<string, unknown> = { x: 1 };
    a.self = a;
    expect(canonicalJson(a)).toBe('{"self":"[circular]","x":1}');
  });

  it("repeats a shared (non-cyclic) object", () => {
    const shared = { k: 1 };
    expect(canonicalJson([shared, shared])).toBe('[{"k":1},{"k":1}]');
  });

  it("is stable across a JSON round trip and independent of key order", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = canonicalJson(value);
        expect(canonicalJson(JSON.parse(text))).toBe(text);
        expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(value)));
      }),
    );
  });
});

describe("sealRecord", () => {
  const key = Buffer.from("k".repeat(32));

  it("chains, hashes and signs", () => {
    const first = sealRecord({ kind: "decision", time: "t", tool: "x" }, GENESIS, key);
    expect(first.record.seq).toBe(1);
    expect(first.record.prev).toBe(ZERO_HASH);
    expect(first.record.hash).toBe(recordHash(JSON.parse(first.line)));
    expect(first.record.hmac).toBe(hmacHex(key, first.record.hash));
    const second = sealRecord({ kind: "decision", time: "t" }, { seq: 1, hash: first.record.hash }, key);
    expect(second.record.seq).toBe(2);
    expect(second.record.prev).toBe(first.record.hash);
    expect(JSON.parse(second.line)).toEqual(second.record);
  });

  it("ignores chain fields smuggled in the event", () => {
    const sealed = sealRecord({ kind: "decision", time: "t", seq: 99, hash: "x" } as never, GENESIS, key);
    const parsed = JSON.parse(sealed.line);
    expect(parsed.seq).toBe(1);
    expect(recordHash(parsed)).toBe(parsed.hash);
  });

  it("writes an empty hmac without a key", () => {
    expect(sealRecord({ kind: "policy", time: "t" }, GENESIS, undefined).record.hmac).toBe("");
  });

  it("includes the chain id in the hash", () => {
    const a = sealRecord({ kind: "policy", time: "t" }, GENESIS, key, "a");
    const b = sealRecord({ kind: "policy", time: "t" }, GENESIS, key, "b");
    expect(a.record.chain).toBe("a");
    expect(a.record.hash).not.toBe(b.record.hash);
  });
});

describe("resolveAuditKey", () => {
  const dir = mkdtempSync(join(tmpdir(), "tw-key-"));
  const keyFile = join(dir, "key");
  writeFileSync(keyFile, "file-key-0123456789abcdef\n");

  it.each([
    [
      "explicit key wins",
      { key: "config-key-0123456789", env: { TOOLWARDEN_AUDIT_KEY: "env-key-0123456789abc" } },
      "config-key-0123456789",
    ],
    [
      "key file from options",
      { keyFile, env: { TOOLWARDEN_AUDIT_KEY: "env-key-0123456789abc" } },
      "file-key-0123456789abcdef",
    ],
    ["env key", { env: { TOOLWARDEN_AUDIT_KEY: "env-key-0123456789abc" } }, "env-key-0123456789abc"],
    ["env key file, trimmed", { env: { TOOLWARDEN_AUDIT_KEY_FILE: keyFile } }, "file-key-0123456789abcdef"],
  ])("%s", (_name, options, expected) => {
    expect(resolveAuditKey(options)?.toString("utf8")).toBe(expected);
  });

  it("returns undefined without a key", () => {
    expect(resolveAuditKey({ env: {} })).toBeUndefined();
  });

  it.each([
    ["short key", { key: "short" }, /at least 16/],
    ["missing file", { keyFile: join(dir, "nope") }, /cannot read audit key file/],
  ])("rejects a %s", (_name, options, message) => {
    expect(() => resolveAuditKey({ ...options, env: {} })).toThrow(message);
  });

  it("signingKey refuses to run without a key unless unsigned", () => {
    expect(() => signingKey({ env: {} })).toThrow(AuditKeyError);
    expect(signingKey({ env: {}, unsigned: true })).toBeUndefined();
  });
});
