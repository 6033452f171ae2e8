import { appendFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { auditFiles } from "./files.js";
import { decisionEvent, TEST_KEY, tempDir } from "./fixtures/events.js";
import { JsonlAuditSink } from "./jsonl-sink.js";
import { type AuditFilter, followAudit, queryAudit, tailAudit } from "./query.js";
import type { AuditRecord } from "./types.js";

let dir: string;
let cleanup: () => Promise<void>;
let log: string;
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
  log = join(dir, "audit.jsonl");
  const sink = await JsonlAuditSink.open({ path: log, key: TEST_KEY, maxBytes: 3000 });
  for (let i = 1; i <= 12; i++) await sink.append(decisionEvent(i));
  await sink.close();
});
afterEach(() => cleanup());

async function seqs(filter: AuditFilter): Promise<number[]> {
  const out: number[] = [];
  for await (const r of queryAudit(await auditFiles(log), filter)) out.push(r.seq);
  return out;
}

describe("queryAudit", () => {
  it.each<[string, AuditFilter, number[]]>([
    ["everything", {}, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]],
    ["by verdict", { verdict: "deny" }, [4, 8, 12]],
    ["by several verdicts", { verdict: ["deny", "ask"] }, [4, 8, 12]],
    ["by agent", { agent: "agent-1" }, [1, 3, 5, 7, 9, 11]],
    ["by agent glob", { agent: "agent-*" }, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]],
    ["by tool", { tool: "tool_1" }, [1]],
    ["by tool glob", { tool: "tool_1?" }, [10, 11, 12]],
    ["by session", { session: "s0" }, [3, 6, 9, 12]],
    ["by time range", { since: "2025-01-01T00:00:03Z", until: new Date("2025-01-01T00:00:06Z") }, [3, 4, 5]],
    ["by several fields", { verdict: "deny", session: "s0" }, [12]],
    ["nothing", { tool: "nope" }, []],
  ])("filters %s", async (_name, filter, expected) => {
    expect(await seqs(filter)).toEqual(expected);
  });

  it("rejects a bad time", async () => {
    await expect(seqs({ since: "yesterday-ish" })).rejects.toThrow(/not a valid time/);
  });

  it("skips lines that are not records", async () => {
    await appendFile(log, 'garbage\n\n{"torn":');
    expect((await seqs({})).length).toBe(12);
  });
});

describe("tailAudit", () => {
  it.each([
    [3, [10, 11, 12]],
    [8, [5, 6, 7, 8, 9, 10, 11, 12]],
    [50, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]],
    [0, []],
  ])("returns the last %i records across rotated files", async (n, expected) => {
    expect((await tailAudit(log, n)).map((r) => r.seq)).toEqual(expected);
  });
});

describe("followAudit", () => {
  it("yields appended records and reads the rest of a rotated file before the new one", async () => {
    const path = join(dir, "live", "audit.jsonl");
    const controller = new AbortController();
    const seen: AuditRecord[] = [];
    const following = (async () => {
      for await (const record of followAudit(path, {
        signal: controller.signal,
        pollMs: 5,
        fromStart: true,
      })) {
        seen.push(record);
        if (seen.length === 3) controller.abort();
      }
    })();
    const sink = await JsonlAuditSink.open({ path, key: TEST_KEY });
    await sink.append(decisionEvent(13));
    await vi.waitFor(() => expect(seen).toHaveLength(1));
    await sink.append(decisionEvent(14));
    await sink.close();
    // Rotate by hand right away: record 14 may still be unread in the old file.
    await rename(path, join(dir, "live", "audit.1.jsonl"));
    const again = await JsonlAuditSink.open({ path, key: TEST_KEY });
    await again.append(decisionEvent(15));
    await again.close();
    await following;
    expect(seen.map((r) => r.tool)).toEqual(["tool_13", "tool_14", "tool_15"]);
  });

  it("stops when aborted", async () => {
    const controller = new AbortController();
    const done = (async () => {
      for await (const _ of followAudit(log, { signal: controller.signal, pollMs: 5 })) {
        // Nothing is appended.
      }
    })();
    controller.abort();
    await expect(done).resolves.toBeUndefined();
  });
});
