import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { describeStateStore, describeTwoProcessRace } from "../conformance.js";
import { createStateStore } from "../create.js";
import { DEFAULT_STORE_TIMEOUT_MS } from "../deadline.js";
import type { StateStore } from "../types.js";
import { CommitWatch } from "./commit-watch.js";
import { SqliteStateStore } from "./sqlite-store.js";

const dir = mkdtempSync(join(tmpdir(), "tw-sqlite-store-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const paths = new WeakMap<StateStore, string>();

function open(path: string): SqliteStateStore {
  const store = new SqliteStateStore({ path });
  paths.set(store, path);
  return store;
}

describeStateStore({
  name: "sqlite",
  create: async () => open(join(dir, `conformance-${files++}.db`)),
  reopen: async (store) => open(paths.get(store)!),
});

describeTwoProcessRace({ name: "sqlite", url: () => `sqlite:${join(dir, `race-${files++}.db`)}` });

describe("SqliteStateStore on disk", () => {
  it("waits for another process's lock no longer than the store deadline (the wait blocks the process)", async () => {
    const busyTimeout = (store: StateStore) =>
      (store as unknown as { db: { pragma(p: string, o: { simple: true }): unknown } }).db.pragma(
        "busy_timeout",
        {
          simple: true,
        },
      );
    const byDefault = open(join(dir, `lock-${files++}.db`));
    expect(busyTimeout(byDefault)).toBe(DEFAULT_STORE_TIMEOUT_MS);
    await byDefault.close();
    const served = await createStateStore(`sqlite:${join(dir, `lock-${files++}.db`)}`, { lockWaitMs: 40 });
    expect(busyTimeout(served)).toBe(40);
    await served.close();
  });

  it("survives a restart: counts, spend, labels and approvals are still there", async () => {
    const path = join(dir, `restart-${files++}.db`);
    const before = open(path);
    await before.consume([{ key: "total", limit: 2, windowMs: 0 }], 1);
    await before.consume([{ key: "win", limit: 1, windowMs: 10_000 }], 1);
    await before.spend({ key: "b", amount: 1.25, max: 10 });
    await before.addSeen("s", ["private"]);
    await before.putApproval({
      id: "a1",
      status: "pending",
      callHash: "h",
      tool: "t",
      rule: null,
      reason: "r",
      argsSummary: "{}",
      createdAt: 0,
      expiresAt: 100,
    });
    await before.close();

    const after = open(path);
    expect(await after.consume([{ key: "total", limit: 2, windowMs: 0 }], 2)).toEqual([]);
    expect(await after.consume([{ key: "total", limit: 2, windowMs: 0 }], 3)).toHaveLength(1);
    expect(await after.consume([{ key: "win", limit: 1, windowMs: 10_000 }], 2)).toEqual([
      { key: "win", limit: 1, count: 1, resetAt: 10_001 },
    ]);
    expect(await after.spent("b")).toBe(1.25);
    expect(await after.seen("s")).toEqual(["private"]);
    expect((await after.decideApproval("a1", "approved", "x", undefined, 50))?.status).toBe("approved");
    await after.close();
  });

  it("uses WAL mode", async () => {
    const path = join(dir, `wal-${files++}.db`);
    const store = open(path);
    const db = (store as unknown as { db: { pragma(s: string, o: object): unknown } }).db;
    expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
    await store.close();
  });

  it("writes the report counters of concurrent decisions in one transaction, and reads them at once", async () => {
    const path = join(dir, `notes-${files++}.db`);
    const store = open(path);
    const limits = { ttlMs: 60_000, maxSessions: 10, maxPerOwner: 10, maxBytes: 1 << 20 };
    await store.openSession("s", { owner: "a" }, limits, 1);
    await store.openSession("t", { owner: "a" }, limits, 1);
    const wal = () => statSync(`${path}-wal`).size;
    const before = wal();
    const noted = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        store.noteSession(i % 2 ? "s" : "t", { tool: "x", verdict: i % 3 ? "allow" : "deny" }, limits, 2),
      ),
    );
    expect(noted.every(Boolean)).toBe(true);
    // One commit writes each changed page once (a WAL frame is a page and a 24-byte header);
    // a transaction per note would write at least one frame per note.
    expect((wal() - before) / (4096 + 24)).toBeLessThan(6);
    // A note not yet written is in the counters read after it.
    void store.noteSession("s", { tool: "y", verdict: "flag", blocked: '{"tool":"y"}' }, limits, 3);
    expect(await store.sessionCounters("s", 3)).toMatchObject({
      counts: { allow: 20, deny: 10, "x\u0000allow": 20, "x\u0000deny": 10, flag: 1, "y\u0000flag": 1 },
      blocked: ['{"tool":"y"}'],
    });
    expect(await store.noteSession("gone", { tool: "x", verdict: "allow" }, limits, 3)).toBe(false);
    await store.close();
  });

  it("writes the notes of decisions in successive turns of the event loop in one transaction", async () => {
    const path = join(dir, `notes-turns-${files++}.db`);
    const store = open(path);
    const limits = { ttlMs: 60_000, maxSessions: 10, maxPerOwner: 10, maxBytes: 1 << 20 };
    await store.openSession("s", { owner: "a" }, limits, 1);
    const wal = () => statSync(`${path}-wal`).size;
    const before = wal();
    // One decision per turn, as a lone agent makes them: a commit per turn would be one per note.
    const noted: Array<Promise<boolean>> = [];
    for (let i = 0; i < 20; i++) {
      noted.push(store.noteSession("s", { tool: "x", verdict: "allow" }, limits, 2));
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect((await Promise.all(noted)).every(Boolean)).toBe(true);
    expect((wal() - before) / (4096 + 24)).toBeLessThan(6);
    expect(await store.sessionCounters("s", 3)).toMatchObject({ counts: { allow: 20 } });
    await store.close();
  });

  it("reads a session without the write lock while another process holds it, unless the read must write", async () => {
    const path = join(dir, `read-${files++}.db`);
    const store = new SqliteStateStore({ path, busyTimeoutMs: 20 });
    const limits = { ttlMs: 60_000, maxSessions: 10, maxPerOwner: 10, maxBytes: 1 << 20 };
    await store.openSession("s", { owner: "a" }, limits, 1000);
    await store.appendSession("s", ["e1"], limits, 1000);
    const other = new Database(path);
    other.exec("BEGIN IMMEDIATE");
    try {
      expect(await store.readSession("s", 0, limits, 2000)).toMatchObject({
        owner: "a",
        seq: 1,
        entries: ["e1"],
      });
      expect(await store.readSession("nope", 0, limits, 2000)).toBeUndefined();
      // Past a tenth of the TTL the read refreshes the expiry: that write waits for the lock.
      await expect(store.readSession("s", 0, limits, 1000 + 7_000)).rejects.toThrow(/locked|busy/i);
    } finally {
      other.exec("ROLLBACK");
      other.close();
    }
    expect(await store.readSession("s", 0, limits, 1000 + 7_000)).toMatchObject({ seq: 1 });
    await store.close();
  });

  it("a read sees what another connection appended or ended, and expiry, whichever way it reads", async () => {
    const path = join(dir, `seen-${files++}.db`);
    const a = new SqliteStateStore({ path });
    const b = new SqliteStateStore({ path });
    const limits = { ttlMs: 60_000, maxSessions: 10, maxPerOwner: 10, maxBytes: 1 << 20 };
    try {
      await a.openSession("s", { owner: "o" }, limits, 1000);
      await a.appendSession("s", ["e1"], limits, 1000);
      expect(await a.readSession("s", 0, limits, 1000)).toMatchObject({ seq: 1, entries: ["e1"] });
      expect(await a.readSession("s", 1, limits, 1001)).toMatchObject({ owner: "o", seq: 1, entries: [] });
      // Another process appends: the next read on `a` must see it.
      await b.appendSession("s", ["e2"], limits, 1002);
      expect(await a.readSession("s", 1, limits, 1003)).toMatchObject({ seq: 2, entries: ["e2"] });
      // `a`'s own append, then a read from where it stood before.
      await a.appendSession("s", ["e3"], limits, 1004);
      expect(await a.readSession("s", 2, limits, 1005)).toMatchObject({ seq: 3, entries: ["e3"] });
      expect(await a.readSession("s", 3, limits, 1006)).toMatchObject({ seq: 3, entries: [] });
      // Another process ends it; then, on `a` alone, expiry.
      await b.endSession("s");
      expect(await a.readSession("s", 3, limits, 1007)).toBeUndefined();
      await a.openSession("t", { owner: "o" }, limits, 2000);
      expect(await a.readSession("t", 0, limits, 2001)).toMatchObject({ seq: 0 });
      expect(await a.readSession("t", 0, limits, 2000 + 60_000)).toBeUndefined();
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("a read sees what another process wrote, however often the session was read before", async () => {
    const path = join(dir, `process-${files++}.db`);
    const store = new SqliteStateStore({ path });
    const limits = { ttlMs: 60_000, maxSessions: 10, maxPerOwner: 10, maxBytes: 1 << 20 };
    const write = (...ops: string[]) =>
      execFileSync(process.execPath, ["--import", "tsx", WRITER, path, "s", "1500", ...ops], {
        stdio: "pipe",
      });
    try {
      await store.openSession("s", { owner: "o" }, limits, 1000);
      for (let i = 0; i < 50; i++) expect((await store.readSession("s", 0, limits, 1001 + i))?.seq).toBe(0);
      write("append:e1");
      expect(await store.readSession("s", 0, limits, 1100)).toMatchObject({ seq: 1, entries: ["e1"] });
      for (let i = 0; i < 50; i++) expect((await store.readSession("s", 1, limits, 1101 + i))?.seq).toBe(1);
      // A commit that leaves the head as it was (a report counter), then one that ends the session.
      write("note");
      expect(await store.readSession("s", 1, limits, 1200)).toMatchObject({ seq: 1, entries: [] });
      write("end");
      expect(await store.readSession("s", 1, limits, 1300)).toBeUndefined();
    } finally {
      await store.close();
    }
  });
});

const WRITER = fileURLToPath(new URL("../fixtures/session-writer.mjs", import.meta.url));

describe("CommitWatch", () => {
  it("says unchanged until a commit by any connection or process, and never before it has looked", () => {
    const path = join(dir, `watch-${files++}.db`);
    const db = new Database(path);
    db.pragma("journal_mode = WAL");
    db.exec("CREATE TABLE t (n INTEGER)");
    const watch = CommitWatch.open(db) as CommitWatch;
    const other = new Database(path);
    try {
      expect(watch.unchanged()).toBe(false);
      expect(watch.unchanged()).toBe(true);
      db.prepare("SELECT count(*) FROM t").get();
      expect(watch.unchanged()).toBe(true);
      db.exec("INSERT INTO t VALUES (1)");
      expect(watch.unchanged()).toBe(false);
      expect(watch.unchanged()).toBe(true);
      other.exec("INSERT INTO t VALUES (2)");
      expect(watch.unchanged()).toBe(false);
      execFileSync(process.execPath, [
        "-e",
        `const db = new (require("better-sqlite3"))(${JSON.stringify(path)}); db.exec("INSERT INTO t VALUES (3)"); db.close();`,
      ]);
      expect(watch.unchanged()).toBe(false);
      expect(watch.unchanged()).toBe(true);
      // A checkpoint moves pages into the database file but commits nothing; a write after it starts the WAL anew.
      db.pragma("wal_checkpoint(TRUNCATE)");
      db.exec("INSERT INTO t VALUES (4)");
      expect(watch.unchanged()).toBe(false);
    } finally {
      watch.close();
      other.close();
      db.close();
    }
  });

  it("is not kept for a database without a shared WAL index", () => {
    expect(CommitWatch.open(new Database(":memory:"))).toBeUndefined();
    const rollback = new Database(join(dir, `rollback-${files++}.db`));
    expect(CommitWatch.open(rollback)).toBeUndefined();
    rollback.close();
  });
});
