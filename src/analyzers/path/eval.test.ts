import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { Finding } from "../../core/index.js";
import type { ArgCheck } from "../kind.js";
import { pathKind } from "./index.js";

interface EvalCase {
  tool: string;
  args: Record<string, unknown>;
  expect: "allow" | "deny";
  why: string;
}

const dir = new URL("../../../eval/path/", import.meta.url);
const policy = parse(readFileSync(new URL("policy.yaml", dir), "utf8")) as {
  tools: Record<string, { args?: Record<string, { path?: unknown }> }>;
};
const cases = readFileSync(new URL("cases.jsonl", dir), "utf8")
  .split("\n")
  .filter((line) => line.trim() !== "")
  .map((line) => JSON.parse(line) as EvalCase);

/** Each tool's `path` constraints, compiled exactly as the policy states them. */
const checks = new Map<string, Array<[string, ArgCheck]>>(
  Object.entries(policy.tools).map(([tool, declaration]) => [
    tool,
    Object.entries(declaration.args ?? {}).map(([arg, kinds]) => [
      arg,
      pathKind.compile(pathKind.options.parse(kinds.path)),
    ]),
  ]),
);

describe("eval/path corpus", () => {
  it("has enough cases on both sides", () => {
    expect(cases.length).toBeGreaterThanOrEqual(60);
    expect(cases.filter((c) => c.expect === "allow").length).toBeGreaterThanOrEqual(25);
    expect(cases.filter((c) => c.expect === "deny").length).toBeGreaterThanOrEqual(25);
  });

  it.each(cases.map((c) => [`${c.tool} ${JSON.stringify(c.args.path)}`, c] as const))("%s", (_name, c) => {
    const out: Finding[] = [];
    for (const [arg, check] of checks.get(c.tool) ?? []) check(c.args[arg], arg, out);
    const detail = `${c.why}: ${out.map((f) => `${f.code} ${f.message}`).join("; ")}`;
    expect(out.length > 0 ? "deny" : "allow", detail).toBe(c.expect);
  });
});
