import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AuditKeyError } from "./errors.js";
import { describeSinkConformance } from "./fixtures/conformance.js";
import { decisionEvent, TEST_KEY, tempDir } from "./fixtures/events.js";
import { SqliteAuditSink, verifySqlite } from "./sqlite-sink.js";

describeSinkConformance("SqliteAuditSink", async () => {
  const { dir, cleanup } = await tempDir();
  const path = join(dir, "audit.db");
  return {
    open: async () => new SqliteAuditSink({ path, key: TEST_KEY }),
    verify: async () => {
      const db = new Database(path, { readonly: true });
      try {
        return await verifySqlite(db, TEST_KEY);
      } finally {
        db.close();
      }
    },
    tools: async () => {
      const db = new Database(path, { readonly: true });
      try {
        return (
          db.prepare("SELECT tool FROM audit_records ORDER BY seq").all() as Array<{ tool: string }>
        ).map((r) => r.tool);
      } finally {
        db.close();
      }
    },
    cleanup,
  };
});

describe("SqliteAuditSink", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let path: string;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
    path = join(dir, "audit.db");
  });
  afterEach(() => cleanup());

  async function seeded(n: number): Promise<Database.Database> {
    const sink = new SqliteAuditSink({ path, key: TEST_KEY });
    for (let i = 1; i <= n; i++) await sink.append(decisionEvent(i));
    await sink.close();
    return new Database(path);
  }

  it("refuses to start without a key", () => {
    expect(() => new SqliteAuditSink({ path, env: {} })).toThrow(AuditKeyError);
  });

  it("migrates once and records the migration", async () => {
    (await seeded(1)).close();
    const db = await seeded(1);
    expect(db.prepare("SELECT version FROM schema_migrations").all()).toEqual([{ version: 1 }]);
    expect(db.prepare("SELECT count(*) AS n FROM audit_records").get()).toEqual({ n: 2 });
    db.close();
  });

  it("fills the violation and approval tables", async () => {
    const sink = new SqliteAuditSink({ path, key: TEST_KEY });
    await sink.append(decisionEvent(4));
    await sink.append(
      decisionEvent(5, { kind: "approval", approval: { id: "ap-9", status: "denied", by: "bob" } }),
    );
    await sink.close();
    const db = new Database(path);
    expect(db.prepare("SELECT seq, idx, code, arg FROM audit_violations").all()).toEqual([
      { seq: 1, idx: 0, code: "secret.aws_key", arg: "body" },
    ]);
    expect(db.prepare("SELECT seq, approval_id, status, decided_by FROM audit_approvals").all()).toEqual([
      { seq: 2, approval_id: "ap-9", status: "denied", decided_by: "bob" },
    ]);
    db.close();
  });

  it("keeps one chain with two writers on the same file", async () => {
    const a = new SqliteAuditSink({ path, key: TEST_KEY });
    const b = new SqliteAuditSink({ path, key: TEST_KEY });
    await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).append(decisionEvent(i))));
    await Promise.all([a.close(), b.close()]);
    const db = new Database(path);
    expect(await verifySqlite(db, TEST_KEY)).toMatchObject({ ok: true, records: 40 });
    db.close();
  });

  it("keeps separate chains apart", async () => {
    const a = new SqliteAuditSink({ path, key: TEST_KEY, chain: "r1" });
    const b = new SqliteAuditSink({ path, key: TEST_KEY, chain: "r2" });
    await Promise.all([a.append(decisionEvent(1)), b.append(decisionEvent(2)), a.append(decisionEvent(3))]);
    expect(await a.verify()).toMatchObject({ ok: true, records: 2 });
    expect(await b.verify()).toMatchObject({ ok: true, records: 1 });
    expect(a.head.seq).toBe(2);
    await Promise.all([a.close(), b.close()]);
  });

  it.each([
    ["an edited column", "UPDATE audit_records SET verdict = 'allow' WHERE seq = 4", "hash", 4],
    [
      "an edited record",
      "UPDATE audit_records SET record = replace(record, 'tool_3', 'tool_x') WHERE seq = 3",
      "hash",
      3,
    ],
    ["a deleted row", "DELETE FROM audit_records WHERE seq = 2", "missing", 2],
    ["a deleted last row", "DELETE FROM audit_records WHERE seq = 5", "missing", 5],
    [
      "swapped records",
      "UPDATE audit_records SET record = CASE seq WHEN 2 THEN (SELECT record FROM audit_records WHERE seq = 3) ELSE (SELECT record FROM audit_records WHERE seq = 2) END WHERE seq IN (2, 3)",
      "seq",
      2,
    ],
  ])("detects %s", async (_name, sql, problem, line) => {
    const db = await seeded(5);
    db.pragma("foreign_keys = OFF");
    db.exec(sql);
    const result = await verifySqlite(db, TEST_KEY);
    expect(result.ok).toBe(false);
    expect(result.firstError).toMatchObject({ problem, line });
    db.close();
  });

  describe("with a checkpoint per transaction", () => {
    async function oneBatch(n: number): Promise<Database.Database> {
      const sink = new SqliteAuditSink({ path, key: TEST_KEY });
      await Promise.all(Array.from({ length: n }, (_, i) => sink.append(decisionEvent(i + 1))));
      await sink.close();
      return new Database(path);
    }

    it("signs only the last row of a batch", async () => {
      const db = await oneBatch(5);
      const hmacs = (
        db.prepare("SELECT hmac FROM audit_records ORDER BY seq").all() as Array<{ hmac: string }>
      ).map((r) => r.hmac);
      expect(hmacs.slice(0, 4)).toEqual(["@5", "@5", "@5", "@5"]);
      expect(await verifySqlite(db, TEST_KEY)).toMatchObject({ ok: true, records: 5, checkpoints: 1 });
      db.close();
    });

    it("names the first row no checkpoint signs when the checkpoint row is cut with the head", async () => {
      const db = await oneBatch(5);
      db.pragma("foreign_keys = OFF");
      const four = db.prepare("SELECT hash FROM audit_records WHERE seq = 4").get() as { hash: string };
      db.prepare("DELETE FROM audit_records WHERE seq = 5").run();
      db.prepare("UPDATE audit_chains SET seq = 4, hash = ?").run(four.hash);
      const result = await verifySqlite(db, TEST_KEY);
      expect(result).toMatchObject({ ok: false, records: 0, uncovered: 4 });
      expect(result.firstError).toMatchObject({ problem: "hmac", line: 1, seq: 1 });
      db.close();
    });

    it("refuses to extend a chain whose head is not a signed checkpoint (its checkpoint row cut)", async () => {
      const db = await oneBatch(5);
      db.pragma("foreign_keys = OFF");
      const four = db.prepare("SELECT hash FROM audit_records WHERE seq = 4").get() as { hash: string };
      db.prepare("DELETE FROM audit_records WHERE seq = 5").run();
      db.prepare("UPDATE audit_chains SET seq = 4, hash = ?").run(four.hash);
      db.close();
      const sink = new SqliteAuditSink({ path, key: TEST_KEY });
      await expect(sink.append(decisionEvent(6))).rejects.toThrow(
        /record 4\) is not a checkpoint signed with this key/,
      );
      await sink.close().catch(() => {});
    });

    it("signs the new last row when levelling cuts a batch", async () => {
      (await oneBatch(5)).close();
      const sink = new SqliteAuditSink({ path, key: TEST_KEY });
      expect(sink.truncateAfter(3)).toBe(2);
      expect(await sink.verify()).toMatchObject({ ok: true, records: 3, checkpoints: 1 });
      await sink.append(decisionEvent(4));
      expect(await sink.verify()).toMatchObject({ ok: true, records: 4, checkpoints: 2 });
      await sink.close();
    });
  });
});
