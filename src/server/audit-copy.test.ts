import { mkdirSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { describeSinkConformance } from "../audit/fixtures/conformance.js";
import { decisionEvent, TEST_KEY, tempDir } from "../audit/fixtures/events.js";
import { verifySqlite } from "../audit/sqlite-sink.js";
import { ThreadedSqliteCopy } from "./audit-copy.js";

/** Reads the copy's database as a query would, from its own connection. */
async function read<T>(path: string, query: (db: Database.Database) => T | Promise<T>): Promise<T> {
  const db = new Database(path, { readonly: true });
  try {
    return await query(db);
  } finally {
    db.close();
  }
}

function rows(path: string): Promise<Array<{ tool: string }>> {
  return read(
    path,
    (db) => db.prepare("SELECT tool FROM audit_records ORDER BY seq").all() as Array<{ tool: string }>,
  );
}

describeSinkConformance("ThreadedSqliteCopy", async () => {
  const { dir, cleanup } = await tempDir();
  const path = join(dir, "audit.db");
  return {
    open: async () => (await ThreadedSqliteCopy.open({ path, key: TEST_KEY }))!,
    verify: () => read(path, (db) => verifySqlite(db, TEST_KEY)),
    tools: async () => (await rows(path)).map((r) => r.tool),
    cleanup,
  };
});

describe("ThreadedSqliteCopy", () => {
  it("acknowledges a record only once it is committed in the database", async () => {
    const { dir, cleanup } = await tempDir();
    const path = join(dir, "audit.db");
    const copy = (await ThreadedSqliteCopy.open({ path, key: TEST_KEY, durability: "write" }))!;
    try {
      await copy.append(decisionEvent(1));
      expect(await rows(path)).toEqual([{ tool: "tool_1" }]);
      const later = Array.from({ length: 50 }, (_, i) => copy.append(decisionEvent(i + 2)));
      await Promise.all(later);
      expect(await rows(path)).toHaveLength(51);
    } finally {
      await copy.close();
      await cleanup();
    }
  });

  it("refuses to open, with the reason, when the database cannot be opened", async () => {
    const { dir, cleanup } = await tempDir();
    const path = join(dir, "a-directory");
    mkdirSync(path);
    try {
      await expect(ThreadedSqliteCopy.open({ path, key: TEST_KEY })).rejects.toThrow(
        /cannot open the SQLite audit copy: .+/,
      );
    } finally {
      await cleanup();
    }
  });

  it("refuses a record it cannot send to its thread, and keeps taking others", async () => {
    const { dir, cleanup } = await tempDir();
    const path = join(dir, "audit.db");
    const copy = (await ThreadedSqliteCopy.open({ path, key: TEST_KEY }))!;
    try {
      // A function cannot cross threads; such a record is refused (the fanout spools it), not lost silently.
      await expect(copy.append(decisionEvent(1, { args: { f: () => 1 } }))).rejects.toThrow();
      await copy.append(decisionEvent(2));
      await copy.flush();
      expect(await rows(path)).toEqual([{ tool: "tool_2" }]);
    } finally {
      await copy.close();
      await cleanup();
    }
  });
});
