import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalJson, canonicalJsonDeep } from "./canonical.js";

/** Wraps a value `depth` levels deep in alternating objects and arrays. */
function nest(value: unknown, depth: number): unknown {
  let out = value;
  for (let i = 0; i < depth; i++) out = i % 2 ? [out, undefined, 1] : { b: out, a: undefined, c: [] };
  return out;
}

describe("canonicalJson: the shallow (recursive) and deep (iterative) writers agree", () => {
  it("on any JSON-like value, at every depth around where the shallow writer hands over", () => {
    const odd = fc.constantFrom(undefined, Number.NaN, -0, 10n, new Date(0), () => 1, Symbol("s"));
    // Keys JSON.stringify would not keep in insertion order, or treats specially.
    const key = fc.oneof(fc.string(), fc.constantFrom("__proto__", "0", "10", "9", "1a", "constructor", ""));
    const replaced = fc.constantFrom(
      { toJSON: () => ({ z: 1, a: { toJSON: () => "inner" } }) },
      { toJSON: () => ({ toJSON: () => "not called twice" }) },
      { toJSON: () => undefined },
    );
    const leaf = fc.oneof(
      fc.jsonValue(),
      odd,
      replaced,
      fc.array(odd),
      fc.dictionary(key, fc.oneof(odd, fc.jsonValue(), replaced)),
    );
    fc.assert(
      fc.property(leaf, fc.integer({ min: 0, max: 40 }), (value, depth) => {
        const nested = nest(value, depth);
        expect(canonicalJson(nested)).toBe(canonicalJsonDeep(nested));
      }),
      { numRuns: 500 },
    );
  });

  it("on cycles and shared objects at any depth", () => {
    for (const depth of [0, 1, 31, 32, 33, 100]) {
      const shared = { k: 1 };
      const cyclic: Record<string, unknown> = { x: [shared, shared] };
      cyclic.self = nest(cyclic, depth);
      expect(canonicalJson(cyclic), `depth ${depth}`).toBe(canonicalJsonDeep(cyclic));
    }
  });

  it("writes a value nested 100,000 deep without a stack", () => {
    const deep = nest("x", 100_000);
    expect(canonicalJson(deep)).toBe(canonicalJsonDeep(deep));
  });
});

/** Canonical JSON of plain JSON data, written the obvious way: every object's keys sorted anew. */
function reference(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(reference).join(",")}]`;
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  const entries = Object.keys(value)
    .sort()
    .map((key) => `${JSON.stringify(key)}:${reference((value as Record<string, unknown>)[key])}`);
  return `{${entries.join(",")}}`;
}

describe("canonicalJson: key order", () => {
  it("sorts each object's own keys when shapes that share a first key come in turns", () => {
    const shapes = [
      { t: 1, b: 2, a: 3 },
      { t: 1, a: 3, b: 2 },
      { t: 1, b: 2, c: 3 },
      { t: 1, b: 2 },
      { t: 1, b: 2, a: 3, z: { t: 0, y: 1 } },
    ];
    for (let round = 0; round < 3; round++) {
      for (const value of shapes) {
        expect(canonicalJson(value)).toBe(reference(value));
        expect(canonicalJsonDeep(value)).toBe(reference(value));
      }
    }
  });

  it("on any sequence of objects drawn from a few keys", () => {
    const key = fc.constantFrom("a", "b", "c", "kind", "time", "ké", "Z", "_");
    const object = fc.dictionary(key, fc.oneof(fc.integer(), fc.dictionary(key, fc.boolean())));
    fc.assert(
      fc.property(fc.array(object, { maxLength: 20 }), (values) => {
        for (const value of values) expect(canonicalJson(value)).toBe(reference(value));
      }),
      { numRuns: 300 },
    );
  });
});
