import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Warden } from "../gateway/warden.js";
import { MemoryStateStore } from "../stores/memory/index.js";
import type { StateStore } from "../stores/types.js";
import { type BenchResult, measureAsync, wanted } from "./harness.js";
import { prose } from "./taint.js";

const POLICY = {
  version: 1,
  name: "bench-sessions",
  default: "allow",
  tools: { web_fetch: { produces: ["untrusted"] }, send_email: { sink: "external" } },
  rules: [{ name: "no-exfil", when: { sink: "external", flows: ["untrusted"] }, verdict: "deny" }],
};

const HISTORY_BYTES = 1024 * 1024;
const OUTPUT_BYTES = 20 * 1024;
const ARGUMENT_BYTES = 4096;
const OTHER_SESSIONS = 10_000;

/**
 * "decide with flows" against a session held in each store: 1 MB of labelled history in the
 * session, a 4 KB argument quoting 40 characters of it (so every decision is a real flow hit),
 * the session brought up to date from the store before each decision (one read; none on the
 * memory store). Each store is measured with its session alone, then again after 10,000 other
 * sessions were opened in it: the flow check must not grow with the number of sessions.
 * Redis is `TW_REDIS_URL` (default 127.0.0.1:6379), under a prefix of its own that is removed.
 */
export async function sessionScenarios(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), "tw-bench-sessions-"));
  const prefix = `tw-bench-${randomBytes(4).toString("hex")}:`;
  const results: BenchResult[] = [];
  const open = await measureSessionOpen();
  if (open) results.push(open);
  const stores: Array<[string, () => Promise<StateStore | string>]> = [
    ["memory", async () => new MemoryStateStore()],
    [
      "SQLite",
      async () => {
        const { SqliteStateStore } = await import("../stores/sqlite/index.js");
        return new SqliteStateStore({ path: join(dir, "state.db") });
      },
    ],
    [
      "Redis",
      async () => {
        const { createStateStore } = await import("../stores/create.js");
        const url = new URL(process.env.TW_REDIS_URL ?? "redis://127.0.0.1:6379/0");
        url.searchParams.set("prefix", prefix);
        let store: StateStore | undefined;
        try {
          store = await createStateStore(url.toString());
          await store.countSessions(0);
          return store;
        } catch (error) {
          await store?.close().catch(() => {});
          return `Redis unreachable (${(error as Error).message})`;
        }
      },
    ],
  ];
  const outputs: string[] = [];
  for (let done = 0, i = 0; done < HISTORY_BYTES; done += OUTPUT_BYTES, i++)
    outputs.push(prose(i + 1, OUTPUT_BYTES));
  const quoted = outputs[outputs.length >> 1].slice(1000, 1040);
  const filler = prose(0xbeef, ARGUMENT_BYTES - quoted.length);
  const call = {
    tool: "send_email",
    args: { body: filler.slice(0, filler.length >> 1) + quoted + filler.slice(filler.length >> 1) },
    session: "bench",
    agent: { id: "bench" },
  };
  const names = stores.map(([name]) => {
    const alone = `decide with flows, ${name} session`;
    return [alone, `${alone}, ${OTHER_SESSIONS.toLocaleString("en-US")} other sessions`];
  });
  // Every name asked (no short cut), so all are known when none is chosen.
  const chosen = names.map((pair) => pair.map(wanted));
  // The memory session is the baseline of every other store's ratio: measured when any is chosen.
  if (chosen.flat().some(Boolean)) chosen[0][0] = true;
  let memoryNs: number | undefined;
  try {
    for (const [s, [name, open]] of stores.entries()) {
      const [aloneName, crowdedName] = names[s];
      if (!chosen[s].some(Boolean)) continue;
      const store = await open();
      if (typeof store === "string") {
        results.push({
          name: aloneName,
          medianNs: 0,
          p99Ns: 0,
          opsPerSec: 0,
          note: `skipped: ${store}`,
        });
        continue;
      }
      const warden = Warden.fromObject(POLICY, {
        store,
        storeTimeoutMs: 5000,
        sessions: { maxSessions: OTHER_SESSIONS * 2, maxPerAgent: OTHER_SESSIONS * 2 },
      });
      let crowd = false;
      try {
        for (const output of outputs)
          warden.recordOutput({ tool: "web_fetch", session: "bench", agent: { id: "bench" } }, output);
        await warden.flush("bench");
        if ((await warden.decide(call)).verdict !== "deny") throw new Error(`bench: no flow found (${name})`);
        const options = name === "memory" ? { batch: 500, samples: 15 } : { batch: 100, samples: 15 };
        const alone = await measureAsync(aloneName, () => warden.decide(call), {
          ...options,
          chosen: chosen[s][0],
        });
        if (s === 0) memoryNs = alone.medianNs;
        if (!chosen[s][1]) {
          alone.note = memoryNote(alone.medianNs, memoryNs);
          results.push(alone);
          continue;
        }
        crowd = true;
        for (let i = 0; i < OTHER_SESSIONS; i += 100) {
          await Promise.all(
            Array.from({ length: 100 }, (_, j) =>
              warden.openSession({ id: `other-${i + j}`, agent: { id: "bench" } }),
            ),
          );
        }
        const crowded = await measureAsync(crowdedName, () => warden.decide(call), options);
        alone.note = memoryNote(alone.medianNs, memoryNs);
        crowded.note = `${(crowded.medianNs / alone.medianNs).toFixed(2)}× the same store with one session`;
        results.push(alone, crowded);
      } finally {
        for (let i = 0; crowd && i < OTHER_SESSIONS; i += 500) {
          await Promise.all(Array.from({ length: 500 }, (_, j) => warden.endSession(`other-${i + j}`)));
        }
        await warden.endSession("bench");
        await warden.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}

function memoryNote(ns: number, memoryNs: number | undefined): string {
  const ratio = memoryNs === undefined ? "" : `${(ns / memoryNs).toFixed(1)}× memory; `;
  return `${ratio}4 KB argument, 1 MB labelled history`;
}

/**
 * "open a session (async), memory store": `openSession` with a new id each time, as an agent run starts
 * (the store opens it, this process makes its Session). Sessions are never ended here.
 */
async function measureSessionOpen(): Promise<BenchResult | undefined> {
  const name = "open a session (async), memory store";
  if (!wanted(name)) return undefined;
  const batch = 1000;
  const samples = 15;
  const sessions = batch * (samples + 2);
  const warden = Warden.fromObject(POLICY, {
    store: new MemoryStateStore(),
    sessions: { maxSessions: sessions, maxPerAgent: sessions },
  });
  let next = 0;
  try {
    const result = await measureAsync(
      name,
      () => warden.openSession({ id: `open-${next++}`, agent: { id: "bench" } }),
      { batch, samples },
    );
    result.note = "a new session id each time; none ended";
    return result;
  } finally {
    await warden.close();
  }
}
