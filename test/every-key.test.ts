import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runPolicyTests } from "../src/policy-tools/index.js";
import { compilePolicyFile } from "../src/policy/index.js";
import { policyKeys, toolSchema } from "../src/policy/schema.js";
import { loadPolicyFile } from "../src/policy/load.js";

const FILE = join(import.meta.dirname, "policies", "every-key.yaml");

describe("a policy using every key", () => {
  it("validates, compiles and passes its tests", async () => {
    const policy = compilePolicyFile(FILE);
    const outcomes = await runPolicyTests(policy);
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    expect(outcomes.length).toBe(5);
  });

  it("really uses every top-level and tool key (except the reserved judge/engine)", () => {
    const { sources } = loadPolicyFile(FILE);
    const text = sources.map((s) => s.text).join("\n");
    for (const key of policyKeys().filter((k) => k !== "judge" && k !== "engine")) expect(text).toMatch(new RegExp(`^${key}:`, "m"));
    for (const key of Object.keys(toolSchema.shape)) expect(text).toMatch(new RegExp(`\\b${key}:`));
  });
});
