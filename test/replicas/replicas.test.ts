import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { verifyPostgres } from "../../src/audit/postgres-sink.js";

const run = promisify(execFile);
const CI = process.env.CI === "true";

async function reachable(): Promise<string | undefined> {
  const redis = new Redis({
    host: "127.0.0.1",
    port: 6379,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  const client = new pg.Client({
    host: "127.0.0.1",
    port: 5432,
    user: "postgres",
    database: "test",
    connectionTimeoutMillis: 2000,
  });
  try {
    await redis.connect();
    await redis.ping();
    await client.connect();
    return undefined;
  } catch (error) {
    return `Redis or PostgreSQL unreachable: ${(error as Error).message}`;
  } finally {
    redis.disconnect();
    await client.end().catch(() => {});
  }
}

const unavailable = await reachable();
if (unavailable && !CI) console.warn(`skipping the multi-replica test: ${unavailable}`);

describe.skipIf(unavailable !== undefined && !CI)(
  "two gateway processes sharing Redis and PostgreSQL",
  () => {
    const prefix = `tw-replicas-${randomUUID()}:`;
    const schema = `tw_replicas_${randomUUID().replaceAll("-", "")}`;

    afterAll(async () => {
      const redis = new Redis({ host: "127.0.0.1", port: 6379 });
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length) await redis.del(...keys);
      await redis.quit();
      const client = new pg.Client({ host: "127.0.0.1", port: 5432, user: "postgres", database: "test" });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    });

    it("enforce one limit and one budget exactly, and both audit every decision into one table", async () => {
      if (unavailable) throw new Error(unavailable);
      const calls = 120;
      const child = (replica: string) =>
        run(
          process.execPath,
          [
            "--import",
            "tsx",
            join(import.meta.dirname, "gateway-replica.ts"),
            prefix,
            schema,
            replica,
            String(calls),
          ],
          {
            timeout: 60_000,
          },
        ).then(
          ({ stdout }) =>
            JSON.parse(stdout.trim().split("\n").pop() as string) as { limited: number; bought: number },
        );
      const [a, b] = await Promise.all([child("a"), child("b")]);
      // 2 x 60 calls to `pay` against max 37; 2 x 60 calls to `buy` at 0.1 against a budget of 3.
      expect(a.limited + b.limited).toBe(37);
      expect(a.bought + b.bought).toBe(30);

      const client = new pg.Client({ host: "127.0.0.1", port: 5432, user: "postgres", database: "test" });
      await client.connect();
      try {
        const { rows } = await client.query(
          `SELECT chain, count(*)::int AS n FROM ${schema}.audit_records GROUP BY chain ORDER BY chain`,
        );
        expect(rows).toEqual([
          { chain: "replica-a", n: calls },
          { chain: "replica-b", n: calls },
        ]);
        for (const chain of ["replica-a", "replica-b"]) {
          const verified = await verifyPostgres(client, "replica-test-audit-key-0123456789", {
            schema,
            chain,
          });
          expect(verified.ok).toBe(true);
        }
        const allowed = await client.query(
          `SELECT count(*)::int AS n FROM ${schema}.audit_records WHERE verdict = 'allow'`,
        );
        expect(allowed.rows[0].n).toBe(67);
      } finally {
        await client.end();
      }
    });
  },
);
