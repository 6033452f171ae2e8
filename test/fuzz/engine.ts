import type { FuzzTarget } from "./targets.js";
import { iterationRng } from "./random.js";

/** One problem the fuzzer found: enough to rebuild the input (seed, iteration) and to read it. */
export interface FuzzFinding {
  target: string;
  kind: "throw" | "slow" | "hang";
  seed: number;
  iteration: number;
  message: string;
  ms?: number;
  input: unknown;
}

export interface FuzzReport {
  target: string;
  seed: number;
  iterations: number;
  seconds: number;
  /** Slowest single call, and the iteration it was. */
  maxMs: number;
  maxIteration: number;
  findings: FuzzFinding[];
}

/** Inputs as JSON for the report: `undefined`, NaN and friends spelled out, long strings cut. */
export function describeInput(input: unknown): unknown {
  return JSON.parse(
    JSON.stringify(input, (_, value) => {
      if (value === undefined) return "<undefined>";
      if (typeof value === "number" && !Number.isFinite(value)) return `<${value}>`;
      if (typeof value === "string" && value.length > 100_000)
        return `${value.slice(0, 100_000)}…<${value.length} chars>`;
      return value;
    }) ?? "null",
  );
}

/**
 * Runs `target` for `seconds` (or `iterations`), seed by seed. `progress` (when given) receives
 * the iteration about to run, so a watchdog in another thread can name the input of a hang.
 */
export function fuzz(
  target: FuzzTarget,
  options: {
    seconds: number;
    seed: number;
    iterations?: number;
    progress?: (i: number) => void;
    maxFindings?: number;
  },
): FuzzReport {
  const report: FuzzReport = {
    target: target.name,
    seed: options.seed,
    iterations: 0,
    seconds: 0,
    maxMs: 0,
    maxIteration: -1,
    findings: [],
  };
  const start = performance.now();
  const end = start + options.seconds * 1000;
  const limit = options.iterations ?? Number.POSITIVE_INFINITY;
  for (let i = 0; i < limit && performance.now() < end; i++) {
    options.progress?.(i);
    const input = target.generate(iterationRng(options.seed, i));
    const t0 = performance.now();
    let failure: unknown;
    let threw = false;
    try {
      target.run(input);
    } catch (error) {
      threw = true;
      failure = error;
    }
    const ms = performance.now() - t0;
    report.iterations++;
    if (ms > report.maxMs) {
      report.maxMs = ms;
      report.maxIteration = i;
    }
    if ((threw || ms > target.slowMs) && report.findings.length < (options.maxFindings ?? 20)) {
      const message = threw
        ? failure instanceof Error
          ? `${failure.name}: ${failure.message}`
          : String(failure)
        : `took ${ms.toFixed(0)} ms`;
      report.findings.push({
        target: target.name,
        kind: threw ? "throw" : "slow",
        seed: options.seed,
        iteration: i,
        message: message.slice(0, 500),
        ms,
        input: describeInput(input),
      });
    }
  }
  report.seconds = (performance.now() - start) / 1000;
  return report;
}
