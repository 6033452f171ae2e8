import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compilePolicyFileAsync } from "../src/policy/index.js";
import { policyCoverage, runPolicyTests } from "../src/policy-tools/index.js";

const EXAMPLES = join(import.meta.dirname, "..", "examples");

describe("every bundled example policy passes its own tests", () => {
  const policies = readdirSync(EXAMPLES).map((name) => join(EXAMPLES, name, "policy.yaml"));
  it.each(policies)("%s", async (file) => {
    const outcomes = await runPolicyTests(await compilePolicyFileAsync(file));
    expect(outcomes.length).toBeGreaterThan(0);
    expect(
      outcomes.filter((o) => !o.ok).map((o) => `${o.name}: got ${o.got.verdict} by ${o.got.rule}`),
    ).toEqual([]);
  });
});

describe("every bundled example policy's tests exercise all of it (test --coverage)", () => {
  const policies = readdirSync(EXAMPLES).map((name) => join(EXAMPLES, name, "policy.yaml"));
  it.each(policies)("%s", async (file) => {
    const policy = await compilePolicyFileAsync(file);
    const coverage = policyCoverage(policy, await runPolicyTests(policy));
    const missed = coverage.flatMap((f) =>
      f.items.filter((i) => !i.covered).map((i) => `${i.line}: ${i.kind} ${i.name}`),
    );
    expect(missed).toEqual([]);
  });
});
