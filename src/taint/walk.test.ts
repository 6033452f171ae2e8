import { describe, expect, it } from "vitest";
import type { FlowEvidence } from "../core/index.js";
import { FlowIndex, OVERFLOW_SOURCE } from "./flow-index.js";
import { addValue, MAX_WALK_DEPTH, MAX_WALK_NODES, scanValue } from "./walk.js";

const SECRET = "Customer list: Dana Whitfield, 221B Baker Street, card ending 4412, renewal 2025-03-01.";
const SECRET_A = "Customer list: Dana Whitfield";
const SECRET_B = "221B Baker Street, card ending 4412";

function index(): FlowIndex {
  const i = new FlowIndex();
  i.add(SECRET, ["private"], "crm#1");
  return i;
}

function scan(value: unknown, path = ""): { hits: string[]; complete: boolean } {
  const out: FlowEvidence[] = [];
  const complete = scanValue(index(), value, path, out);
  return { hits: out.map((h) => `${h.arg}:${h.label}@${h.source}`).sort(), complete };
}

describe("scanValue", () => {
  it.each<[string, unknown, string[]]>([
    ["a top-level string", SECRET, [":private@crm#1"]],
    ["an argument among others", { to: "x@y.z", body: `fyi ${SECRET}` }, ["body:private@crm#1"]],
    [
      "content split across two arguments",
      { a: SECRET_A, b: SECRET_B },
      ["a:private@crm#1", "b:private@crm#1"],
    ],
    [
      "nested objects and arrays",
      { mail: { parts: ["hi", { text: SECRET_B }] } },
      ["mail.parts.1.text:private@crm#1"],
    ],
    [
      "a JSON document inside a string",
      { payload: JSON.stringify({ note: `line one\n${SECRET_A}\n"quoted"` }) },
      ["payload:private@crm#1"],
    ],
    [
      "JSON encoded twice",
      { payload: JSON.stringify(JSON.stringify({ x: [SECRET_B] })) },
      ["payload:private@crm#1"],
    ],
    [
      "percent-encoded in a URL",
      { url: `https://evil.example/c?d=${encodeURIComponent(SECRET_B)}` },
      ["url:private@crm#1"],
    ],
    [
      "form-encoded with plus signs",
      { url: `https://evil.example/c?d=${SECRET_B.replace(/ /g, "+")}` },
      ["url:private@crm#1"],
    ],
    ["an object key", { [SECRET_B]: true }, [`${SECRET_B}:private@crm#1`]],
    ["a Map", { m: new Map([["k", SECRET_B]]) }, ["m.0.1:private@crm#1"]],
    ["a Date (by toJSON) and other scalars", { d: new Date(0), n: 42, b: true, z: null, u: undefined }, []],
    ["a fragment below the minimum in each argument", { a: "Dana Whitfield", b: "Baker Street" }, []],
    ["malformed percent-encoding", { url: `%E0%A4%A ${SECRET_A} %ZZ` }, ["url:private@crm#1"]],
  ])("%s", (_name, value, expected) => {
    expect(scan(value)).toEqual({ hits: expected, complete: true });
  });

  it("prefixes paths with the given path", () => {
    expect(scan({ to: [SECRET_B] }, "args").hits).toEqual(["args.to.0:private@crm#1"]);
  });

  it("scans long numbers by their decimal text", () => {
    const i = new FlowIndex();
    i.add("account 12345678901234567 closed", ["private"], "bank#1");
    const out: FlowEvidence[] = [];
    scanValue(i, { n: 12345678901234567n, m: 1234 }, "", out);
    expect(out).toEqual([{ label: "private", source: "bank#1", arg: "n" }]);
  });

  it("walks a cyclic or shared value once", () => {
    const shared: Record<string, unknown> = { text: SECRET_B };
    shared.self = shared;
    let dag: unknown = shared;
    for (let i = 0; i < 40; i++) dag = [dag, dag];
    expect(scan({ dag })).toEqual({ hits: [`dag${".0".repeat(40)}.text:private@crm#1`], complete: true });
  });

  it.each<[string, () => unknown]>([
    [
      "nesting deeper than the cap",
      () => {
        let v: unknown = SECRET_B;
        for (let i = 0; i < MAX_WALK_DEPTH + 5; i++) v = { v };
        return v;
      },
    ],
    ["more nodes than the cap", () => new Array(MAX_WALK_NODES + 10).fill(0)],
    ["binary data", () => ({ blob: new Uint8Array(8) })],
    [
      "a property that throws",
      () =>
        Object.defineProperty({}, "boom", {
          enumerable: true,
          get() {
            throw new Error("no");
          },
        }),
    ],
  ])("reports an incomplete walk for %s without throwing", (_name, make) => {
    const out: FlowEvidence[] = [];
    expect(scanValue(index(), make(), "", out)).toBe(false);
    expect(out).toEqual([]);
  });

  it("still reports what it found before the walk stopped", () => {
    const value = { first: SECRET_B, rest: new Array(MAX_WALK_NODES + 10).fill(1) };
    expect(scan(value)).toEqual({ hits: ["first:private@crm#1"], complete: false });
  });

  it("reports each (label, source, argument) once", () => {
    const body = JSON.stringify({ a: SECRET, b: SECRET });
    expect(scan({ body }).hits).toEqual(["body:private@crm#1"]);
  });

  it("passes overflow hits through with the argument", () => {
    const i = new FlowIndex({ maxBytes: 2048 });
    i.add(SECRET.repeat(40), ["private"], "crm#1");
    const out: FlowEvidence[] = [];
    scanValue(i, { a: "nothing related but long enough", b: "short" }, "", out);
    expect(out).toEqual([{ label: "private", source: OVERFLOW_SOURCE, arg: "a" }]);
  });
});

describe("addValue", () => {
  it("records the leaves of a JSON output so escapes do not break matches", () => {
    const i = new FlowIndex();
    const output = {
      content: [
        { type: "text", text: JSON.stringify({ results: [{ snippet: 'He said "wire it"\nto Dana' }] }) },
      ],
    };
    expect(addValue(i, output, ["untrusted"], "search#1")).toBe(true);
    expect(i.scan('He said "wire it" to Dana').map((h) => h.source)).toEqual(["search#1"]);
  });

  it("records keys, numbers and strings as separate parts", () => {
    const i = new FlowIndex();
    addValue(i, { "alice.smith@example.com": { balance: 1234567890123456 } }, ["private"], "db#1");
    expect(i.scan("mail alice.smith@example.com").length).toBe(1);
    expect(i.scan("id 1234567890123456").length).toBe(1);
    // Joined, the parts would share 24 characters with this; each alone shares fewer than 16.
    expect(i.scan("example.combalance123456")).toEqual([]);
  });

  it("fails closed when the output cannot be walked completely", () => {
    const i = new FlowIndex();
    expect(addValue(i, { a: "some text here", blob: new Uint8Array(4) }, ["untrusted"], "tool#1")).toBe(
      false,
    );
    expect(i.overflowed).toBe(true);
    expect(i.scan("anything at least sixteen long")).toEqual([
      { label: "untrusted", source: OVERFLOW_SOURCE },
    ]);
  });

  it("does nothing without labels", () => {
    const i = new FlowIndex();
    expect(addValue(i, { blob: new Uint8Array(4) }, [], "tool#1")).toBe(true);
    expect(i.overflowed).toBe(false);
  });
});
