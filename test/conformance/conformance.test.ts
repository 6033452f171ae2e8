import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { replayStep, runPolicyTests } from "../../src/policy-tools/index.js";
import type { Call } from "../../src/core/index.js";
import { Warden } from "../../src/gateway/index.js";
import { compilePolicyFile } from "../../src/policy/index.js";
import type { CompiledPolicy } from "../../src/policy/index.js";
import { referenceFor, summarize } from "../properties/harness.js";
import { cliPath } from "../setup/built-cli.js";

/**
 * The conformance corpus: one folder per topic, each a `policy.yaml` whose `tests:` are the cases
 * (run them with `toolwarden test test/conformance/*\/policy.yaml`). Here every case must pass in
 * the engine, and the reference evaluator must reach the same decision (verdict, deciding rule,
 * matched set, finding codes) from the same session state.
 */
const ROOT = resolve(import.meta.dirname, "../..");
const topics = readdirSync(import.meta.dirname, { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
  .sort();
const files = topics.map((topic) => join(import.meta.dirname, topic, "policy.yaml"));

/** The reference's decision for test `i`, from a session prepared exactly as `runPolicyTests` prepares it. */
async function referenceCase(policy: CompiledPolicy, i: number) {
  const { test } = policy.tests[i];
  const warden = new Warden(policy);
  const sessionId = test.call.session ?? `test-${i}`;
  for (const step of test.steps ?? []) await replayStep(warden, { ...step, session: sessionId }, new Set());
  const session = warden.session({ id: sessionId });
  const call: Call = {
    ...(test.call as Call),
    session: sessionId,
    agent: (test.call.agent as Call["agent"]) ?? session.agent,
  };
  const decision = referenceFor(policy, call, session);
  await warden.close();
  return decision;
}

describe("conformance corpus", () => {
  it("has a topic for every `when` key and operator", () => {
    expect(topics.length).toBeGreaterThanOrEqual(12);
  });

  describe.each(topics.map((topic, i) => [topic, files[i]] as const))("%s", (_, file) => {
    const policy = compilePolicyFile(file);

    it("every case passes in the engine", async () => {
      const outcomes = await runPolicyTests(policy);
      expect(outcomes.length).toBeGreaterThan(0);
      const failed = outcomes
        .filter((o) => !o.ok)
        .map((o) => `${o.name} (${o.where}): expected ${o.expected}, got ${o.got.verdict} by ${o.got.rule}`);
      expect(failed).toEqual([]);
    });

    it("the reference evaluator agrees on every case", async () => {
      const outcomes = await runPolicyTests(policy);
      for (const [i, outcome] of outcomes.entries()) {
        const reference = summarize(await referenceCase(policy, i));
        const engine = summarize(outcome.got);
        expect({ case: outcome.name, ...reference }).toEqual({ case: outcome.name, ...engine });
      }
    });
  });

  it("runs with the real CLI: `toolwarden test test/conformance/*/policy.yaml`", () => {
    const run = spawnSync(
      process.execPath,
      [cliPath(), "test", ...files.map((f) => relative(ROOT, f))],
      {
        cwd: ROOT,
        encoding: "utf8",
      },
    );
    expect(run.stderr).toBe("");
    expect(run.stdout).toMatch(/^\d+ passed, 0 failed$/m);
    expect(run.status).toBe(0);
  });
});
