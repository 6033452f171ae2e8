import { appendFile, readFile, rename, stat, symlink, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AuditKeyError, AuditSinkError } from "./errors.js";
import { auditFiles, rotatedPath } from "./files.js";
import { describeSinkConformance } from "./fixtures/conformance.js";
import { decisionEvent, TEST_KEY, tempDir } from "./fixtures/events.js";
import { JsonlAuditSink } from "./jsonl-sink.js";
import { verifyAuditLog } from "./verify.js";

let dir: string;
let cleanup: () => Promise<void>;
let log: string;
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
  log = join(dir, "logs", "audit.jsonl");
});
afterEach(() => cleanup());

async function records(path = log): Promise<Array<Record<string, any>>> {
  return (await readFile(path, "utf8"))
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}

describe("JsonlAuditSink", () => {
  it("refuses to start without a key unless unsigned", async () => {
    await expect(JsonlAuditSink.open({ path: log, env: {} })).rejects.toThrow(AuditKeyError);
    const sink = await JsonlAuditSink.open({ path: log, env: {}, unsigned: true });
    await sink.append(decisionEvent(1));
    await sink.close();
    expect((await records())[0]?.hmac).toBe("");
  });

  it("writes concurrent appends as one ordered chain in batches", async () => {
    const sink = await JsonlAuditSink.open({ path: log, key: TEST_KEY, batchSize: 7 });
    await Promise.all(Array.from({ length: 50 }, (_, i) => sink.append(decisionEvent(i))));
    expect(sink.head.seq).toBe(50);
    expect(sink.pending).toBe(0);
    await sink.close();
    const list = await records();
    expect(list.map((r) => r.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(list.map((r) => r.tool)).toEqual(Array.from({ length: 50 }, (_, i) => `tool_${i}`));
    expect(await verifyAuditLog([log], TEST_KEY)).toMatchObject({ ok: true, records: 50 });
  });

  it("writes a batch of many pieces of multi-byte text, then a smaller one, line for line", async () => {
    // 200 records of ~1,000 UTF-16 units are joined and encoded in several pieces; the smaller batch
    // after them reuses the first batch's buffer.
    const text = (i: number) => `${i} é€😀 ${"ü".repeat(900)} \ud800`;
    const sink = await JsonlAuditSink.open({ path: log, key: TEST_KEY });
    await Promise.all(Array.from({ length: 200 }, (_, i) => sink.append(decisionEvent(i, { reason: text(i) }))));
    await Promise.all(Array.from({ length: 3 }, (_, i) => sink.append(decisionEvent(200 + i))));
    await sink.close();
    const lines = (await readFile(log, "utf8")).split("\n");
    expect(lines.pop()).toBe("");
    expect(lines).toHaveLength(203);
    const list = lines.map((line) => JSON.parse(line));
    expect(list.slice(0, 200).map((r) => r.reason)).toEqual(Array.from({ length: 200 }, (_, i) => text(i)));
    expect(list.slice(200).map((r) => r.tool)).toEqual(["tool_200", "tool_201", "tool_202"]);
    // The first batch was one write, ended by its checkpoint.
    expect(list[198].hmac).toBe("@200");
    expect(await verifyAuditLog([log], TEST_KEY)).toMatchObject({ ok: true, records: 203 });
  });

  it("continues seq and prev after a restart", async () => {
    let sink = await JsonlAuditSink.open({ path: log, key: TEST_KEY });
    await sink.append(decisionEvent(1));
    await sink.append(decisionEvent(2));
    await sink.close();
    sink = await JsonlAuditSink.open({ path: log, key: TEST_KEY });
    expect(sink.head.seq).toBe(2);
    await sink.append(decisionEvent(3));
    await sink.close();
    const list = await records();
    expect(list[2]).toMatchObject({ seq: 3, prev: list[1]?.hash });
    expect(await verifyAuditLog([log], TEST_KEY)).toMatchObject({ ok: true, records: 3 });
  });

  it("rotates by size and keeps the chain across files and restarts", async () => {
    let sink = await JsonlAuditSink.open({ path: log, key: TEST_KEY, maxBytes: 1500 });
    for (let i = 1; i <= 6; i++) await sink.append(decisionEvent(i));
    await sink.close();
    sink = await JsonlAuditSink.open({ path: log, key: TEST_KEY, maxBytes: 1500 });
    for (let i = 7; i <= 10; i++) await sink.append(decisionEvent(i));
    await sink.close();
    const files = await auditFiles(log);
    expect(files.at(-1)).toBe(log);
    expect(files[0]).toBe(join(dir, "logs", "audit.1.jsonl"));
    for (const file of files) expect((await stat(file)).size).toBeLessThanOrEqual(1500);
    const seqs = (await Promise.all(files.map((f) => records(f)))).flat().map((r) => r.seq);
    expect(seqs).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(await verifyAuditLog(files, TEST_KEY)).toMatchObject({ ok: true, records: 10 });
  });

  it.each([
    ["missing", false],
    ["empty", true],
  ])(
    "continues from the newest rotated file when the active file is %s (crash mid-rotation)",
    async (_name, empty) => {
      let sink = await JsonlAuditSink.open({ path: log, key: TEST_KEY, maxBytes: 600 });
      await sink.append(decisionEvent(1));
      await sink.append(decisionEvent(2));
      await sink.close();
      await rename(log, rotatedPath(log, 2));
      if (empty) await writeFile(log, "");
      sink = await JsonlAuditSink.open({ path: log, key: TEST_KEY, maxBytes: 600 });
      expect(sink.head.seq).toBe(2);
      await sink.append(decisionEvent(3));
      await sink.append(decisionEvent(4));
      await sink.close();
      const files = await auditFiles(log);
      expect(files.map((f) => f.slice(dir.length))).toEqual([
        "/logs/audit.1.jsonl",
        "/logs/audit.2.jsonl",
        "/logs/audit.3.jsonl",
        "/logs/audit.jsonl",
      ]);
      expect(await verifyAuditLog(files, TEST_KEY)).toMatchObject({ ok: true, records: 4 });
    },
  );

  it("cuts a torn last line on open and keeps every complete record", async () => {
    let sink = await JsonlAuditSink.open({ path: log, key: TEST_KEY });
    for (let i = 1; i <= 3; i++) await sink.append(decisionEvent(i));
    await sink.close();
    const complete = await readFile(log, "utf8");
    await appendFile(log, '{"kind":"decision","time":"2025-');
    sink = await JsonlAuditSink.open({ path: log, key: TEST_KEY });
    expect(await readFile(log, "utf8")).toBe(complete);
    await sink.append(decisionEvent(4));
    await sink.close();
    expect(await verifyAuditLog([log], TEST_KEY)).toMatchObject({ ok: true, records: 4 });
  });

  it.each([
    [
      "an edited last record",
      (text: string) => text.replace('"tool":"tool_2"', '"tool":"tool_x"'),
      /does not match its hash/,
    ],
    ["a garbage last line", (text: string) => `${text}not json\n`, /is not valid json/],
  ])("refuses to extend %s", async (_name, edit, message) => {
    const sink = await JsonlAuditSink.open({ path: log, key: TEST_KEY });
    await sink.append(decisionEvent(1));
    await sink.append(decisionEvent(2));
    await sink.close();
    await writeFile(log, edit(await readFile(log, "utf8")));
    await expect(JsonlAuditSink.open({ path: log, key: TEST_KEY })).rejects.toThrow(message);
  });

  it("refuses to extend a log signed with another key", async () => {
    const sink = await JsonlAuditSink.open({ path: log, key: TEST_KEY });
    await sink.append(decisionEvent(1));
    await sink.close();
    await expect(JsonlAuditSink.open({ path: log, key: "another-key-0123456789abcdef" })).rejects.toThrow(
      /bad hmac/,
    );
  });

  it("locks the log against a second writer and takes over a dead writer's lock", async () => {
    const sink = await JsonlAuditSink.open({ path: log, key: TEST_KEY });
    await expect(JsonlAuditSink.open({ path: log, key: TEST_KEY })).rejects.toThrow(AuditSinkError);
    await sink.close();
    // A pid that cannot be alive: above the kernel's pid_max.
    await writeFile(`${log}.lock`, `4194305@${hostname()}`);
    const again = await JsonlAuditSink.open({ path: log, key: TEST_KEY });
    await again.close();
    await writeFile(`${log}.lock`, `${process.pid}@another-host`);
    await expect(JsonlAuditSink.open({ path: log, key: TEST_KEY })).rejects.toThrow(/locked by/);
  });

  it.each(["write", "none"] as const)("durability %s writes everything by close", async (durability) => {
    const sink = await JsonlAuditSink.open({ path: log, key: TEST_KEY, durability, batchDelayMs: 5 });
    const acks = Array.from({ length: 20 }, (_, i) => sink.append(decisionEvent(i)));
    await Promise.all(acks);
    await sink.close();
    expect(await verifyAuditLog([log], TEST_KEY)).toMatchObject({ ok: true, records: 20 });
  });

  it("rejects appends after close", async () => {
    const sink = await JsonlAuditSink.open({ path: log, key: TEST_KEY });
    await sink.close();
    await expect(sink.append(decisionEvent(1))).rejects.toThrow(AuditSinkError);
  });

  it("rejects appends when the disk is full, and keeps rejecting", async () => {
    // /dev/full fails every write with ENOSPC: a real full disk.
    const full = join(dir, "full.jsonl");
    await symlink("/dev/full", full);
    const sink = await JsonlAuditSink.open({ path: full, key: TEST_KEY, durability: "write" });
    await expect(sink.append(decisionEvent(1))).rejects.toThrow(/cannot write audit log/);
    await expect(sink.append(decisionEvent(2))).rejects.toThrow(AuditSinkError);
    await expect(sink.close()).rejects.toThrow(AuditSinkError);
  });
});

describeSinkConformance("JsonlAuditSink", async () => {
  const { dir, cleanup } = await tempDir();
  const path = join(dir, "audit.jsonl");
  return {
    open: () => JsonlAuditSink.open({ path, key: TEST_KEY, maxBytes: 4096 }),
    verify: async () => verifyAuditLog(await auditFiles(path), TEST_KEY),
    tools: async () => {
      const files = await auditFiles(path);
      return (await Promise.all(files.map((f) => records(f)))).flat().map((r) => r.tool);
    },
    cleanup,
  };
});
