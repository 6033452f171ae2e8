/** One measured scenario: median nanoseconds per operation over several timed batches. */
export interface BenchResult {
  name: string;
  medianNs: number;
  p99Ns: number;
  opsPerSec: number;
  /** medianNs divided by the raw call's medianNs from the same run. */
  ratio?: number;
  note?: string;
  /** Not measured: `--scenario` chose other scenarios. */
  skipped?: boolean;
}

let chosen: ((name: string) => boolean) | undefined;
const named = new Set<string>();

/** Measures only the scenarios `choose` accepts from now on (all with `undefined`); forgets the names met so far. */
export function chooseScenarios(choose: ((name: string) => boolean) | undefined): void {
  chosen = choose;
  named.clear();
}

/**
 * Whether the scenario `name` is to be measured in this run. Scenario code with costly set-up asks
 * before setting up; `measureSync`/`measureAsync` ask themselves. Every name asked about is kept,
 * so a choice that matched nothing can list what there is.
 */
export function wanted(name: string): boolean {
  named.add(name);
  return !chosen || chosen(name);
}

/** Every scenario name asked about since `chooseScenarios`. */
export function scenarioNames(): string[] {
  return [...named];
}

function skipped(name: string): BenchResult {
  return { name, medianNs: 0, p99Ns: 0, opsPerSec: 0, skipped: true };
}

export interface MeasureOptions {
  /** Operations per timed batch. */
  batch?: number;
  /** Timed batches (after warm-up). */
  samples?: number;
  /** Whether to measure it; default `wanted(name)`. True for a baseline other chosen scenarios need. */
  chosen?: boolean;
}

/** Times a synchronous operation. The result of `fn` is kept so the JIT cannot drop the call. */
export function measureSync(name: string, fn: () => unknown, options: MeasureOptions = {}): BenchResult {
  if (!(options.chosen ?? wanted(name))) return skipped(name);
  const batch = options.batch ?? 10_000;
  const samples = options.samples ?? 25;
  let sink: unknown;
  for (let i = 0; i < batch * 3; i++) sink = fn();
  const perOp: number[] = [];
  for (let s = 0; s < samples; s++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) sink = fn();
    perOp.push(Number(process.hrtime.bigint() - start) / batch);
  }
  keep(sink);
  return summarize(name, perOp);
}

/** Times an asynchronous operation, awaited one at a time. */
export async function measureAsync(
  name: string,
  fn: () => Promise<unknown>,
  options: MeasureOptions = {},
): Promise<BenchResult> {
  if (!(options.chosen ?? wanted(name))) return skipped(name);
  const batch = options.batch ?? 5_000;
  const samples = options.samples ?? 25;
  let sink: unknown;
  for (let i = 0; i < batch * 2; i++) sink = await fn();
  const perOp: number[] = [];
  for (let s = 0; s < samples; s++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) sink = await fn();
    perOp.push(Number(process.hrtime.bigint() - start) / batch);
  }
  keep(sink);
  return summarize(name, perOp);
}

let onResult: ((result: BenchResult) => void) | undefined;

/** Calls `listener` with each scenario's result as it is measured (the CLI shows progress with it). */
export function onBenchResult(listener: ((result: BenchResult) => void) | undefined): void {
  onResult = listener;
}

/** Builds a result from per-operation timings measured some other way (e.g. one timing per request). */
export function summarize(name: string, perOp: number[], note?: string): BenchResult {
  const sorted = [...perOp].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  const p99 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))];
  const result = { name, medianNs: median, p99Ns: p99, opsPerSec: median > 0 ? 1e9 / median : 0, note };
  onResult?.(result);
  return result;
}

let kept: unknown;
function keep(value: unknown): void {
  kept = value;
}
export function lastKept(): unknown {
  return kept;
}

export function formatNs(ns: number): string {
  if (ns < 1_000) return `${ns.toFixed(1)} ns`;
  if (ns < 1_000_000) return `${(ns / 1_000).toFixed(2)} µs`;
  return `${(ns / 1_000_000).toFixed(2)} ms`;
}
