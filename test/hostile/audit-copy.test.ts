import { readFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { resolveAuditKey } from "../../src/audit/index.js";
import { SqliteAuditSink } from "../../src/audit/sqlite-sink.js";
import { startServe, tempDir, writePolicy } from "./procs.js";

/**
 * Issue 17 item 3: the JSONL log is the record of truth; on start `serve` brings its SQLite copy
 * (what `GET /v1/audit` serves) level with it, whatever a crash left: records the copy lacks are
 * copied, records only the copy holds (never acknowledged) are removed.
 */
const POLICY = "version: 1\nname: copy\ndefault: deny\nallow: [search]\n";

/** Identity of a record across the two chains: its content without chain fields. */
function identity(record: Record<string, unknown>): string {
  const { seq: _s, prev: _p, hash: _h, hmac: _m, chain: _c, ...rest } = record;
  return JSON.stringify(
    Object.keys(rest)
      .sort()
      .map((k) => [k, rest[k]]),
  );
}

function logRecords(dataDir: string): string[] {
  return readFileSync(join(dataDir, "audit.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => identity(JSON.parse(line)));
}

function copyRecords(dataDir: string): string[] {
  const db = new Database(join(dataDir, "audit.db"), { readonly: true });
  try {
    return (
      db.prepare("SELECT record FROM audit_records WHERE chain = 'main' ORDER BY seq").all() as Array<{
        record: string;
      }>
    ).map((row) => identity(JSON.parse(row.record)));
  } finally {
    db.close();
  }
}

describe("the SQLite copy is levelled with the JSONL log on start", () => {
  const tmp = tempDir("tw-audit-copy-");
  afterAll(() => tmp.remove());
  const dataDir = join(tmp.dir, "data");
  const policy = writePolicy(tmp.dir, POLICY);

  async function decideMany(n: number, tag: string) {
    const serve = await startServe({ policy, dataDir });
    for (let i = 0; i < n; i++) {
      const res = await serve.request("POST", "/v1/decide", {
        key: serve.adminKey,
        body: { call: { tool: "search", session: tag, args: { i } } },
      });
      expect(res.status).toBe(200);
    }
    expect(await serve.stop()).toBe(0);
  }

  it("a copy that lacks the log's last records and holds records the log never had", async () => {
    await decideMany(20, "first");
    expect(copyRecords(dataDir)).toEqual(logRecords(dataDir));
    // What a crash leaves: the copy lost its last commits (at least 5 records; a commit ends with its
    // signed checkpoint, so the copy ends at one), then took 3 records the log never acknowledged.
    const db = new Database(join(dataDir, "audit.db"));
    const top = (db.prepare("SELECT max(seq) AS n FROM audit_records").get() as { n: number }).n;
    const head = db
      .prepare(
        "SELECT seq, hash FROM audit_records WHERE seq <= ? AND hmac NOT LIKE '@%' ORDER BY seq DESC LIMIT 1",
      )
      .get(top - 5) as { seq: number; hash: string };
    db.prepare("DELETE FROM audit_records WHERE seq > ?").run(head.seq);
    db.prepare("UPDATE audit_chains SET seq = ?, hash = ? WHERE chain = 'main'").run(head.seq, head.hash);
    db.close();
    const key = resolveAuditKey({ keyFile: join(dataDir, "audit.key") });
    const sink = new SqliteAuditSink({ path: join(dataDir, "audit.db"), key });
    for (let i = 0; i < 3; i++) {
      await sink.append({
        kind: "decision",
        time: new Date().toISOString(),
        tool: "ghost",
        verdict: "allow",
        reason: "never acknowledged",
      } as never);
    }
    await sink.close();
    expect(copyRecords(dataDir)).not.toEqual(logRecords(dataDir));

    const serve = await startServe({ policy, dataDir });
    try {
      const listed = await serve.request("GET", "/v1/audit?limit=200", { key: serve.adminKey });
      expect(listed.status).toBe(200);
      expect(listed.body.records.map((r: Record<string, unknown>) => identity(r)).reverse()).toEqual(
        logRecords(dataDir),
      );
      expect(listed.body.records.some((r: { tool?: string }) => r.tool === "ghost")).toBe(false);
      expect(serve.stderr()).toMatch(
        new RegExp(`levelled .*3 records it alone held removed, ${top - head.seq} copied`),
      );
    } finally {
      await serve.stop();
    }
    expect(copyRecords(dataDir)).toEqual(logRecords(dataDir));
  }, 120_000);

  it("after kill -9 under load, the copy equals the log on the next start", async () => {
    for (let round = 0; round < 3; round++) {
      const serve = await startServe({ policy, dataDir });
      let stop = false;
      const load = Array.from({ length: 8 }, async (_, w) => {
        for (let i = 0; !stop; i++) {
          await serve
            .request("POST", "/v1/decide", {
              key: serve.adminKey,
              body: { call: { tool: "search", session: `kill-${round}-${w}`, args: { i } } },
            })
            .catch(() => {});
        }
      });
      await new Promise((r) => setTimeout(r, 800 + round * 300));
      await serve.stop(true);
      stop = true;
      await Promise.all(load);
    }
    const serve = await startServe({ policy, dataDir });
    await serve.stop();
    expect(copyRecords(dataDir)).toEqual(logRecords(dataDir));
  }, 180_000);
});
