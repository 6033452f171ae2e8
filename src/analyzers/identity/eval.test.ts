import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { compileShadowCheck } from "./index.js";

interface EvalCase {
  tool: string;
  args: Record<string, unknown>;
  expect: "allow" | "deny";
  why: string;
}

const dir = new URL("../../../eval/identity/", import.meta.url);
const policy = parse(readFileSync(new URL("policy.yaml", dir), "utf8")) as { tools: Record<string, unknown> };
const cases = readFileSync(new URL("cases.jsonl", dir), "utf8")
  .split("\n")
  .filter((line) => line.trim() !== "")
  .map((line) => JSON.parse(line) as EvalCase);

describe("eval/identity corpus", () => {
  const check = compileShadowCheck(Object.keys(policy.tools));

  it("has enough cases on both sides", () => {
    expect(cases.length).toBeGreaterThanOrEqual(60);
    expect(cases.filter((c) => c.expect === "allow").length).toBeGreaterThanOrEqual(25);
    expect(cases.filter((c) => c.expect === "deny").length).toBeGreaterThanOrEqual(25);
  });

  it.each(cases.map((c) => [JSON.stringify(c.tool), c] as const))("%s", (_name, c) => {
    const finding = check(c.tool);
    expect(finding === null ? "allow" : "deny", c.why).toBe(c.expect);
  });
});
