import { defineConfig } from "vitest/config";

// One property-test seed per run, shared by every worker and printed, so any failure replays with
// TW_PROPERTY_SEED=<seed> (see test/setup/property-seed.ts).
process.env.TW_PROPERTY_SEED ??= String(Math.floor(Math.random() * 2 ** 31));
console.log(`property tests: TW_PROPERTY_SEED=${process.env.TW_PROPERTY_SEED}`);

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    setupFiles: ["test/setup/property-seed.ts"],
  },
});
