import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { sealRecord } from "./chain.js";
import { auditFiles } from "./files.js";
import { decisionEvent, TEST_KEY, tempDir } from "./fixtures/events.js";
import { JsonlAuditSink } from "./jsonl-sink.js";
import { queryAudit } from "./query.js";
import { type AuditProblem, verifyAuditLog } from "./verify.js";

let dir: string;
let cleanup: () => Promise<void>;
let log: string;

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
  log = join(dir, "audit.jsonl");
});
afterEach(() => cleanup());

/** Ten records: each its own batch (every record a checkpoint, as logs before checkpoints were), or one batch (only record 10 signed). */
async function write(layout: "per record" | "one batch"): Promise<void> {
  const sink = await JsonlAuditSink.open({ path: log, key: TEST_KEY });
  if (layout === "one batch") {
    await Promise.all(Array.from({ length: 10 }, (_, i) => sink.append(decisionEvent(i + 1))));
  } else {
    for (let i = 1; i <= 10; i++) await sink.append(decisionEvent(i));
  }
  await sink.close();
}

async function lines(): Promise<string[]> {
  return (await readFile(log, "utf8")).split("\n").slice(0, -1);
}
async function save(list: string[]): Promise<void> {
  await writeFile(log, `${list.join("\n")}\n`);
}
const wrongKey = Buffer.from("some-other-key-0123456789abcdef!");

type Tamper = (list: string[]) => string[] | Promise<string[]>;
const tampers: Array<[string, Tamper, AuditProblem, number, number | undefined]> = [
  [
    "edit a field",
    (l) => l.map((x, i) => (i === 2 ? x.replace('"tool":"tool_3"', '"tool":"tool_9"') : x)),
    "hash",
    3,
    3,
  ],
  [
    "edit a field and recompute the hash without the key",
    (l) =>
      l.map((x, i) => {
        if (i !== 2) return x;
        const r = JSON.parse(x);
        const { hash: _h, hmac: _m, seq, prev, ...event } = r;
        const forged = sealRecord({ ...event, verdict: "allow" }, { seq: seq - 1, hash: prev }, wrongKey);
        return forged.line;
      }),
    "hmac",
    3,
    3,
  ],
  ["delete a record", (l) => l.filter((_, i) => i !== 3), "missing", 4, 5],
  ["delete the first record", (l) => l.slice(1), "missing", 1, 2],
  ["swap two records", (l) => [...l.slice(0, 3), l[4]!, l[3]!, ...l.slice(5)], "seq", 4, 5],
  ["duplicate a record", (l) => [...l.slice(0, 5), l[4]!, ...l.slice(5)], "seq", 6, 5],
  [
    "append a forged record signed with a wrong key",
    (l) => {
      const last = JSON.parse(l.at(-1)!);
      return [...l, sealRecord(decisionEvent(11), { seq: last.seq, hash: last.hash }, wrongKey).line];
    },
    "hmac",
    11,
    11,
  ],
  [
    "append a forged record without a key",
    (l) => {
      const last = JSON.parse(l.at(-1)!);
      return [...l, sealRecord(decisionEvent(11), { seq: last.seq, hash: last.hash }, undefined).line];
    },
    "hmac",
    11,
    11,
  ],
  [
    "replace a record with a validly signed one from another chain",
    (l) =>
      l.map((x, i) =>
        i === 5 ? sealRecord(decisionEvent(6), { seq: 5, hash: "f".repeat(64) }, TEST_KEY).line : x,
      ),
    "prev",
    6,
    6,
  ],
  ["insert a blank line", (l) => [...l.slice(0, 2), "", ...l.slice(2)], "parse", 3, undefined],
];

describe.each(["per record", "one batch"] as const)("verifyAuditLog, a checkpoint %s", (layout) => {
  beforeEach(() => write(layout));

  it("accepts an untouched log", async () => {
    const result = await verifyAuditLog([log], TEST_KEY);
    expect(result).toMatchObject({
      ok: true,
      records: 10,
      hmacChecked: true,
      checkpoints: layout === "one batch" ? 1 : 10,
      uncovered: 0,
      last: { seq: 10 },
    });
    expect(result.firstError).toBeUndefined();
  });

  it.each(tampers)("detects: %s", async (_name, tamper, problem, line, seq) => {
    await save(await tamper(await lines()));
    const result = await verifyAuditLog([log], TEST_KEY);
    expect(result.ok).toBe(false);
    expect(result.firstError).toMatchObject({ problem, line, file: log });
    expect(result.firstError?.seq).toBe(seq);
    // Only records a good checkpoint signs count as verified.
    expect(result.records).toBe(layout === "one batch" ? (line > 10 ? 10 : 0) : line - 1);
  });

  it("detects a line truncated mid-record", async () => {
    const text = await readFile(log, "utf8");
    await writeFile(log, text.slice(0, text.length - 40));
    const result = await verifyAuditLog([log], TEST_KEY);
    expect(result.firstError).toMatchObject({ problem: "parse", line: 10 });
    expect(result.records).toBe(layout === "one batch" ? 0 : 9);
  });

  it("rejects every record with the wrong key, naming the first checkpoint", async () => {
    const result = await verifyAuditLog([log], wrongKey);
    const first = layout === "one batch" ? 10 : 1;
    expect(result.firstError).toMatchObject({ problem: "hmac", line: first, seq: first });
    expect(result.records).toBe(0);
    if (layout === "one batch")
      expect(result.firstError?.message).toContain("records 1–10 (10) are not authenticated");
  });
});

describe("verifyAuditLog", () => {
  beforeEach(() => write("one batch"));

  it("reads U+2028 and U+2029 inside a record as text, not as line ends (Node 24's readline splits there)", async () => {
    const odd = join(dir, "odd.jsonl");
    const sink = await JsonlAuditSink.open({ path: odd, key: TEST_KEY });
    await sink.append(decisionEvent(1, { reason: "line one\u2028line two\u2029end" }));
    await sink.append(decisionEvent(2));
    await sink.close();
    expect(await readFile(odd, "utf8")).toContain("\u2028");
    const result = await verifyAuditLog([odd], TEST_KEY);
    expect(result).toMatchObject({ ok: true, records: 2 });
    expect(result.firstError).toBeUndefined();
    const read = [];
    for await (const record of queryAudit([odd])) read.push(record);
    expect(read.map((r) => r.reason)).toEqual([
      "line one\u2028line two\u2029end",
      'reason 2 «ünïcode» "quoted"',
    ]);
  });

  it("checks only the hash chain without a key, and says so", async () => {
    const last = JSON.parse((await lines()).at(-1)!);
    await save([
      ...(await lines()),
      sealRecord(decisionEvent(11), { seq: last.seq, hash: last.hash }, undefined).line,
    ]);
    expect(await verifyAuditLog([log])).toMatchObject({ ok: true, records: 11, hmacChecked: false });
  });

  it("reports a missing file", async () => {
    const result = await verifyAuditLog([join(dir, "nope.jsonl"), log], TEST_KEY);
    expect(result.firstError).toMatchObject({ problem: "missing", line: 0 });
  });

  it("verifies a tail from an anchor", async () => {
    const list = await lines();
    const anchor = JSON.parse(list[4]!);
    await save(list.slice(5));
    expect((await verifyAuditLog([log], TEST_KEY)).firstError?.problem).toBe("missing");
    const result = await verifyAuditLog([log], TEST_KEY, { from: { seq: anchor.seq, hash: anchor.hash } });
    expect(result).toMatchObject({ ok: true, records: 5, last: { seq: 10 } });
  });

  it("follows the chain across rotated files and notices a missing one", async () => {
    await rm(log);
    const sink = await JsonlAuditSink.open({ path: log, key: TEST_KEY, maxBytes: 2000 });
    for (let i = 1; i <= 12; i++) await sink.append(decisionEvent(i));
    await sink.close();
    const files = await auditFiles(log);
    expect(files.length).toBeGreaterThan(3);
    expect(await verifyAuditLog(files, TEST_KEY)).toMatchObject({ ok: true, records: 12 });
    // Out of order, or with a file left out, the chain breaks at the file boundary.
    const swapped = [files[1]!, files[0]!, ...files.slice(2)];
    expect((await verifyAuditLog(swapped, TEST_KEY)).firstError).toMatchObject({ file: files[1], line: 1 });
    await rm(files[1]!);
    const result = await verifyAuditLog(
      files.filter((f) => f !== files[1]),
      TEST_KEY,
    );
    expect(result.firstError).toMatchObject({ problem: "missing", file: files[2], line: 1 });
  });
});

describe("checkpoints", () => {
  /** Two batches, records 1–5 and 6–10, each ending with its checkpoint. */
  async function twoBatches(): Promise<void> {
    const sink = await JsonlAuditSink.open({ path: log, key: TEST_KEY });
    for (const first of [1, 6]) {
      await Promise.all(Array.from({ length: 5 }, (_, i) => sink.append(decisionEvent(first + i))));
    }
    await sink.close();
  }

  it("signs only the last record of a batch; the others name it", async () => {
    await twoBatches();
    const hmacs = (await lines()).map((l) => JSON.parse(l).hmac as string);
    expect(hmacs.slice(0, 4)).toEqual(["@5", "@5", "@5", "@5"]);
    expect(hmacs[4]).toMatch(/^[0-9a-f]{64}$/);
    expect(hmacs.slice(5, 9)).toEqual(["@10", "@10", "@10", "@10"]);
  });

  it("names the first record no checkpoint signs when the last checkpoint is cut, and counts them", async () => {
    await twoBatches();
    await save((await lines()).slice(0, 9));
    const result = await verifyAuditLog([log], TEST_KEY);
    expect(result).toMatchObject({ ok: false, records: 5, uncovered: 4, last: { seq: 5 } });
    expect(result.firstError).toMatchObject({ problem: "hmac", file: log, line: 6, seq: 6 });
    expect(result.firstError?.message).toBe(
      "records 6–9 (4) are not signed by any checkpoint: the log ends before record 10, the checkpoint that would sign them (a batch cut short, or records cut from or appended to the end)",
    );
    // Without the key nothing is authenticated; the tail is still reported.
    expect(await verifyAuditLog([log])).toMatchObject({
      ok: true,
      records: 9,
      uncovered: 4,
      hmacChecked: false,
    });
  });

  it("a sink reopened after a torn batch cuts the records its checkpoint never signed", async () => {
    await twoBatches();
    await save((await lines()).slice(0, 8));
    const sink = await JsonlAuditSink.open({ path: log, key: TEST_KEY });
    expect(sink.head.seq).toBe(5);
    await sink.append(decisionEvent(6));
    await sink.close();
    expect(await verifyAuditLog([log], TEST_KEY)).toMatchObject({ ok: true, records: 6, uncovered: 0 });
  });

  it("verifies and continues a log written before checkpoints (an HMAC on every record)", async () => {
    const old = await readFile(new URL("./fixtures/per-record-hmac.jsonl", import.meta.url), "utf8");
    await writeFile(log, old);
    expect(await verifyAuditLog([log], TEST_KEY)).toMatchObject({ ok: true, records: 6, checkpoints: 6 });
    expect((await verifyAuditLog([log], wrongKey)).firstError).toMatchObject({
      problem: "hmac",
      line: 1,
      seq: 1,
    });
    const sink = await JsonlAuditSink.open({ path: log, key: TEST_KEY });
    await Promise.all([7, 8, 9].map((i) => sink.append(decisionEvent(i))));
    await sink.close();
    expect(await verifyAuditLog([log], TEST_KEY)).toMatchObject({ ok: true, records: 9, checkpoints: 7 });
  });
});
