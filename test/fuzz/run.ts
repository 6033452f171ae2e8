/**
 * The fuzzer, outside the test suite:
 *
 *   nice node --import tsx test/fuzz/run.ts [--seconds N] [--seed S] [--out DIR] [--list] [TARGET...]
 *
 * Runs each target (all by default: `loader`, `kind:<k>` for every registered constraint kind,
 * `detector:<d>` for every detector, `identity`) one after another for N seconds (default
 * TW_FUZZ_SECONDS, else 60) in a worker thread. The main thread is a watchdog: a worker that
 * makes no progress for 30 s is stopped and the stuck input is rebuilt from (seed, iteration).
 * Prints one JSON report per target; findings also go to DIR (default test/fuzz/findings/).
 * Exit code 1 when anything was found.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import type { FuzzFinding, FuzzReport } from "./engine.js";
import { describeInput, fuzz } from "./engine.js";
import { iterationRng } from "./random.js";
import { fuzzTargets } from "./targets.js";

const HANG_MS = 30_000;

interface Job {
  target: string;
  seconds: number;
  seed: number;
  progress: SharedArrayBuffer;
}

if (!isMainThread) {
  const job = workerData as Job;
  const target = fuzzTargets().find((t) => t.name === job.target)!;
  const at = new Int32Array(job.progress);
  const report = fuzz(target, {
    seconds: job.seconds,
    seed: job.seed,
    progress: (i) => Atomics.store(at, 0, i),
  });
  parentPort!.postMessage(report);
} else {
  await main();
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: {
      seconds: { type: "string" },
      seed: { type: "string" },
      out: { type: "string" },
      list: { type: "boolean" },
    },
    allowPositionals: true,
  });
  const all = fuzzTargets().map((t) => t.name);
  if (values.list) {
    process.stdout.write(`${all.join("\n")}\n`);
    return;
  }
  const seconds = Number(values.seconds ?? process.env.TW_FUZZ_SECONDS ?? 60);
  const seed = Number(values.seed ?? Date.now() % 2 ** 31);
  const out = resolve(values.out ?? join(import.meta.dirname, "findings"));
  const chosen = positionals.length ? positionals : all;
  let found = 0;
  for (const name of chosen) {
    if (!all.includes(name)) throw new Error(`unknown target ${name}; targets: ${all.join(", ")}`);
    const report = await runInWorker({ target: name, seconds, seed, progress: new SharedArrayBuffer(4) });
    found += report.findings.length;
    if (report.findings.length) {
      mkdirSync(out, { recursive: true });
      const file = join(out, `${name.replace(/[^a-z0-9-]/gi, "_")}-${seed}.json`);
      writeFileSync(file, `${JSON.stringify(report.findings, null, 2)}\n`);
    }
    const { findings, ...summary } = report;
    process.stdout.write(
      `${JSON.stringify({ ...summary, maxMs: Number(summary.maxMs.toFixed(2)), findings: findings.map((f) => `${f.kind} #${f.iteration}: ${f.message.slice(0, 160)}`) })}\n`,
    );
  }
  process.exitCode = found ? 1 : 0;
}

/** Runs one job in a worker; stops it and reports a hang when it makes no progress for HANG_MS. */
function runInWorker(job: Job): Promise<FuzzReport> {
  return new Promise((done) => {
    // The worker loads this file through tsx's API: a worker does not inherit `--import tsx`.
    const boot = `import("tsx/esm/api").then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}); })`;
    const worker = new Worker(boot, { eval: true, workerData: job });
    const at = new Int32Array(job.progress);
    const started = Date.now();
    let last = -1;
    let lastChange = Date.now();
    const timer = setInterval(() => {
      const now = Atomics.load(at, 0);
      if (now !== last) {
        last = now;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > HANG_MS) {
        clearInterval(timer);
        void worker.terminate();
        const target = fuzzTargets().find((t) => t.name === job.target)!;
        const hang: FuzzFinding = {
          target: job.target,
          kind: "hang",
          seed: job.seed,
          iteration: now,
          message: `no progress for ${HANG_MS / 1000} s`,
          input: describeInput(target.generate(iterationRng(job.seed, now))),
        };
        done({
          target: job.target,
          seed: job.seed,
          iterations: now,
          seconds: (Date.now() - started) / 1000,
          maxMs: Date.now() - lastChange,
          maxIteration: now,
          findings: [hang],
        });
      }
    }, 1000);
    worker.once("message", (report: FuzzReport) => {
      clearInterval(timer);
      void worker.terminate();
      done(report);
    });
    worker.once("error", (error) => {
      // The worker died (out of memory, say): the input it was on is the finding.
      clearInterval(timer);
      const now = Atomics.load(at, 0);
      const target = fuzzTargets().find((t) => t.name === job.target)!;
      const died: FuzzFinding = {
        target: job.target,
        kind: "throw",
        seed: job.seed,
        iteration: now,
        message: `the worker died: ${error.message}`,
        input: describeInput(target.generate(iterationRng(job.seed, now))),
      };
      done({
        target: job.target,
        seed: job.seed,
        iterations: now,
        seconds: (Date.now() - started) / 1000,
        maxMs: 0,
        maxIteration: now,
        findings: [died],
      });
    });
  });
}
