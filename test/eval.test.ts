import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { evalCategories, scoreCategory } from "../src/cli/eval.js";

const ROOT = join(import.meta.dirname, "..", "eval");

/** The shipped adversarial suite, through the real engine (policy, analyzers, combination), as `toolwarden eval` runs it. */
describe("the shipped eval suite", () => {
  const categories = evalCategories(ROOT);

  it("covers every analyzer with at least 300 cases in all", async () => {
    expect(categories).toEqual(["identity", "outputs", "path", "secrets", "shell", "sql", "url"]);
  });

  it.each(categories)("%s: every case decided as labelled, both polarities present", async (category) => {
    const score = await scoreCategory(join(ROOT, category), category);
    expect(score.tp + score.fn).toBeGreaterThanOrEqual(30);
    expect(score.fp + score.tn).toBeGreaterThanOrEqual(30);
    expect(score.misses.map((m) => `${m.case.expect} expected, got ${m.verdict} (${m.rule}): ${m.case.why}`)).toEqual([]);
  });
});
