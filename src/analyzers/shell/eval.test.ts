import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { Finding } from "../../core/index.js";
import type { ArgCheck } from "../kind.js";
import { shellKind } from "./index.js";

interface EvalCase {
  tool: string;
  args: Record<string, unknown>;
  expect: "allow" | "deny";
  why: string;
}

const dir = new URL("../../../eval/shell/", import.meta.url);
const policy = parse(readFileSync(new URL("policy.yaml", dir), "utf8")) as {
  tools: Record<string, { args: Record<string, { shell: unknown }> }>;
};
const cases = readFileSync(new URL("cases.jsonl", dir), "utf8")
  .split("\n")
  .filter((line) => line.trim() !== "")
  .map((line) => JSON.parse(line) as EvalCase);

// The same options the policy declares, compiled through the kind's own schema.
const checks = new Map<string, Map<string, ArgCheck>>();
for (const [tool, declaration] of Object.entries(policy.tools)) {
  const args = new Map<string, ArgCheck>();
  for (const [arg, kinds] of Object.entries(declaration.args)) {
    args.set(arg, shellKind.compile(shellKind.options.parse(kinds.shell)));
  }
  checks.set(tool, args);
}

describe("eval/shell corpus", () => {
  it("has enough cases on both sides", () => {
    expect(cases.length).toBeGreaterThanOrEqual(70);
    expect(cases.filter((c) => c.expect === "allow").length).toBeGreaterThanOrEqual(30);
    expect(cases.filter((c) => c.expect === "deny").length).toBeGreaterThanOrEqual(30);
  });

  it.each(cases.map((c) => [`${c.tool}: ${String(c.args.command).slice(0, 70)}`, c] as const))(
    "%s",
    (_name, c) => {
      const out: Finding[] = [];
      for (const [arg, check] of checks.get(c.tool)!) check(c.args[arg], arg, out);
      const verdict = out.length === 0 ? "allow" : "deny";
      expect(verdict, `${c.why}: ${JSON.stringify(out)}`).toBe(c.expect);
    },
  );
});
