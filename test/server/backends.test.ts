import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./helpers.js";

const REDIS = "redis://127.0.0.1:6379/0";
const PG = "postgres://postgres@127.0.0.1:5432/test";

async function redisUp(): Promise<boolean> {
  const probe = new Redis(REDIS, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on("error", () => {});
  try {
    await probe.connect();
    return (await probe.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

async function postgresUp(): Promise<boolean> {
  const client = new pg.Client({ connectionString: PG, connectionTimeoutMillis: 2000 });
  client.on("error", () => {});
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

const down = [
  !(await redisUp()) && "redis at 127.0.0.1:6379",
  !(await postgresUp()) && "postgresql at 127.0.0.1:5432",
].filter(Boolean);
const skip = down.length > 0 && process.env.CI !== "true";
if (skip)
  console.warn(
    `skipping the server's Redis/PostgreSQL test: no ${down.join(" or ")} (with CI=true it fails instead)`,
  );

describe.skipIf(skip)("serve with a Redis state store and PostgreSQL audit", () => {
  const prefix = `tw-server-test:${randomBytes(4).toString("hex")}:`;
  const schema = `tw_server_test_${process.pid}_${randomBytes(4).toString("hex")}`;
  let t: TestServer;

  beforeAll(async () => {
    t = await startTestServer({ store: `${REDIS}?prefix=${prefix}`, auditPg: PG, auditPgSchema: schema });
  });

  afterAll(async () => {
    await t?.close();
    const redis = new Redis(REDIS);
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
    const client = new pg.Client({ connectionString: PG });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await client.end();
  });

  it("keeps approvals in Redis and the audit trail in PostgreSQL, and queries it there", async () => {
    const agent = await t.key("agent", "bot-pg");
    const call = { tool: "refund", args: { amount: 300 }, session: "pg-1" };
    const waiting = t.request("POST", "/v1/decide", { key: agent, body: { call, wait: 30_000 } });
    let pending: any;
    for (let i = 0; i < 200 && !pending; i++) {
      pending = (await t.request("GET", "/v1/approvals", { key: t.adminKey })).body.approvals[0];
      if (!pending) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(t.server.warden.store.kind).toBe("redis");
    expect(await t.server.warden.store.getApproval(pending.id)).toMatchObject({
      status: "pending",
      agent: "bot-pg",
    });
    await t.request("POST", `/v1/approvals/${pending.id}/approve`, { key: t.adminKey });
    expect((await waiting).body.verdict).toBe("allow");

    await t.server.audit.flush();
    const client = new pg.Client({ connectionString: PG });
    await client.connect();
    const { rows } = await client.query(
      `SELECT kind, verdict FROM "${schema}".audit_records WHERE session = 'pg-1' ORDER BY seq`,
    );
    await client.end();
    expect(rows.map((r) => `${r.kind}:${r.verdict ?? ""}`)).toEqual([
      "decision:ask",
      "approval:",
      "decision:allow",
    ]);
    const api = await t.request("GET", "/v1/audit?session=pg-1", { key: t.adminKey });
    expect(api.body.records.map((r: any) => r.kind)).toEqual(["decision", "approval", "decision"]);
    const stats = await t.request("GET", "/v1/audit/stats", { key: t.adminKey });
    expect(stats.body.totals).toMatchObject({ allow: 1, ask: 1 });
  });
});
