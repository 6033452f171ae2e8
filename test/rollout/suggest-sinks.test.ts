/**
 * `suggest` reads the audit a server writes: the SQLite file and the PostgreSQL tables, as well as
 * JSONL logs. The support-bot session runs observed into each sink; the policy learned from it
 * is the same whichever sink it came from.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { dropSchema, PG_CONNECTION, skipPostgres, uniqueSchema } from "../../src/audit/fixtures/postgres.js";
import { PostgresAuditSink } from "../../src/audit/postgres-sink.js";
import { SqliteAuditSink } from "../../src/audit/sqlite-sink.js";
import type { AuditSink } from "../../src/audit/types.js";
import { replayStep } from "../../src/policy-tools/index.js";
import { Warden } from "../../src/gateway/index.js";
import { compilePolicyFileAsync } from "../../src/policy/index.js";
import { CLI, ROOT } from "../mcp/helpers.js";

const EXAMPLE = join(ROOT, "examples/support-bot");
const KEY = "suggest-sinks-key-0123456789abcdef";
const skipPg = await skipPostgres();

async function observeInto(audit: AuditSink): Promise<void> {
  const policy = await compilePolicyFileAsync(join(EXAMPLE, "policy.yaml"));
  // Arguments must be in the audit for suggest to learn from them.
  const full = { ...policy, auditArgs: "full" as const };
  const warden = new Warden(full, { audit, observe: true });
  const sessions = new Set<string>();
  for (const line of readFileSync(join(EXAMPLE, "session.jsonl"), "utf8").split("\n").filter(Boolean))
    await replayStep(warden, JSON.parse(line), sessions);
  await warden.close();
}

function suggest(input: string, extra: string[] = []): string {
  return execFileSync(process.execPath, [...CLI, "suggest", input, ...extra], { encoding: "utf8" });
}

/** The policy part of a suggestion (the header names the input, which differs). */
function body(yaml: string): string {
  return yaml.slice(yaml.indexOf("version: 1")).replace(/name: observed .*/g, "");
}

describe("suggest from database audit sinks", () => {
  const schema = uniqueSchema();
  afterAll(() => (skipPg ? undefined : dropSchema(schema)));

  it("SQLite: learns what the JSONL log teaches", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tw-suggest-db-"));
    const db = join(dir, "audit.db");
    await observeInto(new SqliteAuditSink({ path: db, key: KEY, durability: "write" }));
    const fromDb = suggest(db);
    expect(fromDb).toMatch(/Not learned from \(the observing policy denied them\): 7/);
    expect(fromDb).toMatch(
      /sql: \{ sql: \{ allow: \[ select \], tables: \{ allow: \[ customers, orders \] \} \} \}/,
    );
    expect(fromDb).toMatch(/command: \{ shell: \{ programs: \[ grep, ls \] \} \}/);
  });

  it.skipIf(skipPg)("PostgreSQL: the same policy as from SQLite", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tw-suggest-pg-"));
    const db = join(dir, "audit.db");
    await observeInto(new SqliteAuditSink({ path: db, key: KEY, durability: "write" }));
    await observeInto(await PostgresAuditSink.open({ connection: PG_CONNECTION, schema, key: KEY }));
    const url = `postgres://${PG_CONNECTION.user}@${PG_CONNECTION.host}:${PG_CONNECTION.port}/${PG_CONNECTION.database}`;
    const fromPg = suggest(url, ["--schema", schema]);
    expect(body(fromPg)).toBe(body(suggest(db)));
  }, 120_000); // two observed sessions and two `suggest` processes
});
