import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runPolicyTests } from "../src/cli/test.js";
import { compilePolicyFile } from "../src/policy/index.js";

const EXAMPLES = join(import.meta.dirname, "..", "examples");

describe("every bundled example policy passes its own tests", () => {
  const policies = readdirSync(EXAMPLES).map((name) => join(EXAMPLES, name, "policy.yaml"));
  it.each(policies)("%s", async (file) => {
    const outcomes = await runPolicyTests(compilePolicyFile(file));
    expect(outcomes.length).toBeGreaterThan(0);
    expect(
      outcomes.filter((o) => !o.ok).map((o) => `${o.name}: got ${o.got.verdict} by ${o.got.rule}`),
    ).toEqual([]);
  });
});
