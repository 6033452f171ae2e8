import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fuzz } from "./engine.js";
import { fuzzTargets } from "./targets.js";

/**
 * The fuzzer in the test suite: every target for a few seconds in all (TW_FUZZ_SECONDS, default
 * 3, shared by the targets; TW_FUZZ_SEED to vary the inputs), and every finding kept as a
 * regression case. Only throws fail here: call times are reported, not asserted (see
 * test/fuzz/run.ts for long runs, with a watchdog for hangs).
 */
const SECONDS = Number(process.env.TW_FUZZ_SECONDS ?? 3);
const SEED = Number(process.env.TW_FUZZ_SEED ?? 20261122);
const targets = fuzzTargets();

describe("fuzzing", () => {
  it("covers the loader, every registered constraint kind and detector, and the look-alike check", () => {
    const names = targets.map((t) => t.name);
    expect(names).toContain("loader");
    expect(names).toContain("identity");
    expect(names).toEqual(
      expect.arrayContaining(["kind:enum", "kind:regex", "kind:max_length", "kind:range"]),
    );
  });

  it.each(targets.map((t) => [t.name, t] as const))("%s never throws", (_, target) => {
    const report = fuzz(target, { seconds: SECONDS / targets.length, seed: SEED });
    const throws = report.findings.filter((f) => f.kind === "throw");
    expect(report.iterations).toBeGreaterThan(0);
    expect(throws, JSON.stringify(throws, null, 2).slice(0, 4000)).toEqual([]);
  });

  const regressions = JSON.parse(
    readFileSync(join(import.meta.dirname, "regressions.json"), "utf8"),
  ) as Array<{
    target: string;
    note: string;
    input: unknown;
  }>;
  it.each(regressions.map((r) => [r.note, r] as const))("regression: %s", (_, { target, input }) => {
    const found = targets.find((t) => t.name === target);
    expect(found, `target ${target}`).toBeDefined();
    expect(() => found!.run(input)).not.toThrow();
  });
});
