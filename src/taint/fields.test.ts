import { stringify } from "yaml";
import { describe, expect, it } from "vitest";
import { MAX_YAML_CHARS, parseRendering, splitOutput } from "./fields.js";
import type { FieldLabels } from "./fields.js";

const field = (path: string, labels: string[]): FieldLabels => ({ path: path.split("."), labels });
const TRANSACTIONS = [
  { id: 9, sender: "LT121000011101001000", amount: 0.01, subject: "Refund me at LT121000011101001000" },
];
const subjects = [field("*.subject", ["untrusted"])];

/** Keys of the outputs below: walked-through objects give their keys a part of their own. */
const KEY_NAMES = new Set(["id", "sender", "amount", "subject", "from", "body", "items", "next", "other"]);

/** The labels each leaf (not a key name) ends up with, as `leaf -> labels`. */
function labelsOf(output: unknown, fields: FieldLabels[], base: string[] = []): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  const visit = (value: unknown, labels: string[]) => {
    if (value !== null && typeof value === "object")
      for (const item of Object.values(value)) visit(item, labels);
    else if (!KEY_NAMES.has(String(value))) out[String(value)] = [...labels].sort();
  };
  for (const part of splitOutput(output, fields, base).parts) visit(part.value, part.labels);
  return out;
}

describe("splitOutput", () => {
  const structured = labelsOf(TRANSACTIONS, subjects);

  it.each([
    ["JSON text", JSON.stringify(TRANSACTIONS)],
    ["indented JSON text", JSON.stringify(TRANSACTIONS, null, 2)],
    ["YAML text", stringify(TRANSACTIONS)],
  ])("labels %s exactly as the object (issue 18, item 1a)", (_name, text) => {
    expect(structured["Refund me at LT121000011101001000"]).toEqual(["untrusted"]);
    expect(structured.LT121000011101001000).toEqual([]);
    expect(labelsOf(text, subjects)).toEqual(structured);
  });

  it.each([
    ["prose", "Transfer 9 from LT121000011101001000: Refund me at LT121000011101001000"],
    ["prose that parses as YAML but names no field", "Sender: LT121000011101001000\nNote: Refund me"],
    ["a JSON scalar", '"Refund me at LT121000011101001000"'],
    ["broken JSON", '[{"subject": "Refund me"'],
    ["a number", 42],
  ])("gives %s every label the fields declare (item 1c)", (_name, output) => {
    const split = splitOutput(output, [...subjects, field("body", ["private"]), field("from", [])], ["web"]);
    expect(split.form).toBe("whole");
    expect(split.parts).toEqual([{ value: output, labels: ["web", "untrusted", "private"] }]);
  });

  it("drops declassified labels from the union too", () => {
    expect(splitOutput("plain text", subjects, ["web"], ["untrusted"]).parts[0].labels).toEqual(["web"]);
  });

  it("one pattern labels a list and an object output alike (item 8)", () => {
    const one = [field("subject", ["untrusted"])];
    expect(labelsOf({ subject: "hi there", sender: "a" }, one)).toEqual({ "hi there": ["untrusted"], a: [] });
    expect(labelsOf([{ subject: "hi there", sender: "a" }], one)).toEqual({
      "hi there": ["untrusted"],
      a: [],
    });
    expect(
      labelsOf({ items: [{ subject: "hi there", sender: "a" }] }, [field("items.subject", ["u"])]),
    ).toEqual({
      "hi there": ["u"],
      a: [],
    });
    expect(labelsOf([{ subject: "x1" }, { subject: "x2" }], [field("0.subject", ["u"])])).toEqual({
      x1: ["u"],
      x2: [],
    });
  });

  it("the most specific field wins; `[]` means no label", () => {
    const fields = [field("*.from", []), field("*", ["untrusted"])].sort(
      (a, b) => b.path.length - a.path.length,
    );
    expect(labelsOf([{ from: "a@x.example", body: "hello" }], fields)).toEqual({
      "a@x.example": [],
      hello: ["untrusted"],
    });
  });

  it("labels an output deeper than the walk goes with every label", () => {
    let deep: unknown = { subject: "deep" };
    for (let i = 0; i < 40; i++) deep = { next: deep };
    const fields = [field(`${"next.".repeat(40)}subject`, ["untrusted"]), field("other", ["private"])];
    expect(labelsOf(deep, fields).deep).toEqual(["private", "untrusted"]);
  });

  it("without fields, a rendering is read as its value (for trusted values)", () => {
    expect(splitOutput(JSON.stringify([{ iban: "X" }]), [], []).parts[0].value).toEqual([{ iban: "X" }]);
    expect(splitOutput(stringify({ iban: "X" }), [], []).parts[0].value).toEqual({ iban: "X" });
    expect(splitOutput("plain words", [], ["u"]).parts[0]).toEqual({ value: "plain words", labels: ["u"] });
  });
});

describe("parseRendering", () => {
  it.each<[string, string, string | undefined]>([
    ["a JSON object", '{"a": 1}', "json"],
    ["a JSON list", "[1, 2]", "json"],
    ["YAML naming a field", "- subject: hi\n  sender: x\n", "yaml"],
    ["YAML with no text", "[]", "json"],
    ["plain prose", "Pay the bill today", undefined],
    ["a YAML scalar", "just: ", undefined],
    ["prose with a colon naming no field", "Note: send it to x", undefined],
    [
      "a YAML alias bomb",
      `a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\n${"d: [*c, *c]\n".repeat(200)}`,
      undefined,
    ],
  ])("%s", (_name, text, form) => {
    expect(parseRendering(text, subjects)?.form).toBe(form);
  });
});

describe("bounds", () => {
  it("YAML text longer than MAX_YAML_CHARS is not parsed: it carries every declared label", () => {
    const rows = Array.from({ length: 2000 }, (_, i) => ({ sender: `S${i}`, subject: `note ${i}` }));
    const text = stringify(rows);
    expect(text.length).toBeGreaterThan(MAX_YAML_CHARS);
    expect(splitOutput(text, subjects, []).form).toBe("whole");
    expect(splitOutput(stringify(rows.slice(0, 100)), subjects, []).form).toBe("yaml");
  });
});
