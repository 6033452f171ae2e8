import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { Finding } from "../../core/index.js";
import { secretsDetector } from "./index.js";

interface EvalCase {
  tool: string;
  args: Record<string, unknown>;
  expect: "allow" | "deny";
  why: string;
}

const dir = new URL("../../../eval/secrets/", import.meta.url);
const policy = parse(readFileSync(new URL("policy.yaml", dir), "utf8")) as { detect: Record<string, string> };
const cases = readFileSync(new URL("cases.jsonl", dir), "utf8")
  .split("\n")
  .filter((line) => line.trim() !== "")
  .map((line) => JSON.parse(line) as EvalCase);

/** Every string leaf with its dotted path, as the gateway hands them to detectors. */
function leaves(value: unknown, path: string, out: Array<[string, string]>): Array<[string, string]> {
  if (typeof value === "string") out.push([path, value]);
  else if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) leaves(item, `${path}.${i}`, out);
  } else if (value !== null && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) leaves(item, path === "" ? key : `${path}.${key}`, out);
  }
  return out;
}

describe("eval/secrets corpus", () => {
  it("is the policy that denies on secrets", () => {
    expect(policy.detect).toEqual({ secrets: "deny" });
  });

  it("has enough cases on both sides", () => {
    expect(cases.length).toBeGreaterThanOrEqual(70);
    expect(cases.filter((c) => c.expect === "allow").length).toBeGreaterThanOrEqual(30);
    expect(cases.filter((c) => c.expect === "deny").length).toBeGreaterThanOrEqual(30);
  });

  it.each(cases.map((c) => [c.why, c] as const))("%s", (_name, c) => {
    const out: Finding[] = [];
    for (const [arg, text] of leaves(c.args, "", [])) secretsDetector.scan(text, arg, out);
    const verdict = out.length === 0 ? "allow" : "deny";
    expect(verdict, `${c.why}: ${JSON.stringify(out)}`).toBe(c.expect);
  });
});
