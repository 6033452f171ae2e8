import { spawn } from "node:child_process";
import { appendFile, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { auditFiles } from "./files.js";
import { TEST_KEY, tempDir } from "./fixtures/events.js";
import { JsonlAuditSink } from "./jsonl-sink.js";
import { verifyAuditLog } from "./verify.js";

const child = fileURLToPath(new URL("./fixtures/crash-writer.ts", import.meta.url));

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir("tw-crash-")));
afterEach(() => cleanup());

/** Runs the writer until it has acknowledged at least `count` events, then kills it with SIGKILL. */
function runAndKill(log: string, start: number, count: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ["--import", "tsx", child, log, String(start)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const acked: number[] = [];
    let buffer = "";
    let stderr = "";
    proc.stdout.setEncoding("utf8");
    proc.stdout.on("data", (chunk: string) => {
      buffer += chunk;
      const lines = buffer.split("\n");
      buffer = lines.pop()!;
      for (const line of lines) acked.push(Number(line));
      if (acked.length >= count && !proc.killed) proc.kill("SIGKILL");
    });
    proc.stderr.on("data", (chunk) => (stderr += chunk));
    proc.on("error", reject);
    proc.on("exit", (_code, signal) => {
      if (signal === "SIGKILL") resolve(acked);
      else reject(new Error(`writer exited on its own: ${stderr}`));
    });
  });
}

async function loggedEvents(log: string): Promise<Set<number>> {
  const seen = new Set<number>();
  for (const file of await auditFiles(log)) {
    for (const line of (await readFile(file, "utf8")).split("\n")) {
      if (line) seen.add(JSON.parse(line).data.n);
    }
  }
  return seen;
}

describe("crash safety", () => {
  it("keeps every acknowledged record across SIGKILL, and the chain verifies after reopening", async () => {
    const log = join(dir, "audit.jsonl");
    let start = 1;
    const acked: number[] = [];
    for (let round = 0; round < 2; round++) {
      acked.push(...(await runAndKill(log, start, 1200)));
      if (round === 0) {
        // SIGKILL never splits a write(2), but a power cut can leave half a line: add one.
        await appendFile(log, '{"kind":"decision","time":"2025-01-01T00:00:00.000Z","seq":');
        expect((await verifyAuditLog(await auditFiles(log), TEST_KEY)).firstError?.problem).toBe("parse");
      }
      // Reopening repairs a torn tail and continues the chain; the next round writes on top.
      const sink = await JsonlAuditSink.open({ path: log, key: TEST_KEY });
      await sink.close();
      const result = await verifyAuditLog(await auditFiles(log), TEST_KEY);
      expect(result.firstError).toBeUndefined();
      expect(result.ok).toBe(true);
      const logged = await loggedEvents(log);
      expect(acked.filter((n) => !logged.has(n))).toEqual([]);
      start = Math.max(...logged) + 1000;
    }
    expect((await auditFiles(log)).length).toBeGreaterThan(1);
  });
});
