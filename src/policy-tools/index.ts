/**
 * What runs a policy rather than compiles it: its `tests:`, a trace replayed step by step,
 * coverage, and the decisions two policies differ on. They need a Warden (`gateway/`), which
 * `policy/` may not import, so they sit above it; the CLI only parses flags and prints.
 */

export type { CoverageItem, FileCoverage } from "./coverage.js";
export { mergeCoverage, policyCoverage } from "./coverage.js";
export { diffPolicies } from "./diff.js";
export { lineError, replayStep } from "./replay.js";
export type { TestOutcome } from "./tests.js";
export { runPolicyTests } from "./tests.js";
