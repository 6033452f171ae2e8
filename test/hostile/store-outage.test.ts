import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type PrivateRedis,
  type ServeProcess,
  startRedis,
  startServe,
  tempDir,
  until,
  writePolicy,
} from "./procs.js";

/**
 * Issue 17 item 7: `serve` with a Redis store that dies or freezes. A store operation has a
 * deadline; past it the call is denied naming the store, a count that arrives later never
 * allows anything, `/health` says the store is down, ioredis prints no unhandled error events,
 * and decisions recover by themselves when Redis is back. Real CLI, a private redis-server.
 */
const POLICY = `version: 1
name: outage
default: deny
allow: [search]
limits:
  - { name: search-rate, when: { tool: search }, rate: 100000/minute, per: agent }
`;

describe("the state store fails: decisions deny in bounded time and recover", () => {
  const tmp = tempDir("tw-outage-");
  let redis: PrivateRedis;
  let serve: ServeProcess;
  let agent: string;
  const decide = async (n: number) =>
    (
      await serve.request("POST", "/v1/decide", {
        key: agent,
        body: { call: { tool: "search", args: { q: `q${n}` } } },
      })
    ).body;

  beforeAll(async () => {
    redis = await startRedis();
    serve = await startServe({
      policy: writePolicy(tmp.dir, POLICY),
      dataDir: join(tmp.dir, "data"),
      args: [
        "--store",
        `${redis.url}?prefix=tw-outage-${randomBytes(3).toString("hex")}:`,
        ...(process.env.TW_CLI ? [] : ["--store-timeout", "1000"]),
      ],
    });
    const created = await serve.request("POST", "/v1/keys", {
      key: serve.adminKey,
      body: { role: "agent", name: "bot", agent: "bot" },
    });
    agent = created.body.key;
  }, 60_000);

  afterAll(async () => {
    redis?.thaw();
    await serve?.stop(true);
    await redis?.kill();
    tmp.remove();
  });

  it("allows while Redis answers and /health is ok", async () => {
    expect((await decide(0)).verdict).toBe("allow");
    const health = await serve.request("GET", "/health");
    expect([health.status, health.body.checks?.store]).toEqual([200, "ok"]);
  });

  it("Redis killed: deny naming the store, /health down, no unhandled error events; back: allow again", async () => {
    await redis.kill();
    const denied = await decide(1);
    expect([denied.verdict, denied.rule]).toEqual(["deny", "store-unavailable"]);
    expect(denied.reason).toMatch(/state store `redis`/);
    const health = await serve.request("GET", "/health");
    expect([health.status, health.body.status, health.body.checks?.store]).toEqual([503, "degraded", "down"]);
    // A few reconnect attempts happen meanwhile.
    await new Promise((r) => setTimeout(r, 1500));
    expect(serve.stderr()).not.toMatch(/Unhandled error event/);
    expect(serve.stderr()).toMatch(/state store `redis` is down/);

    await redis.restart();
    const back = await until(
      "decisions to recover",
      async () => {
        const d = await decide(2);
        return d.verdict === "allow" ? d : undefined;
      },
      30_000,
    );
    expect(back.rule).toBe("allow:search");
    expect((await serve.request("GET", "/health")).status).toBe(200);
    expect(serve.stderr()).toMatch(/state store `redis` answers again/);
  }, 60_000);

  it("Redis frozen (SIGSTOP): calls in flight are denied, none allowed after it thaws", async () => {
    redis.freeze();
    const inFlight = Array.from({ length: 20 }, (_, i) => decide(100 + i));
    const health = serve.request("GET", "/health");
    await new Promise((r) => setTimeout(r, 2500));
    redis.thaw();
    const decisions = await Promise.all(inFlight);
    expect(decisions.map((d) => d.verdict)).toEqual(Array(20).fill("deny"));
    expect(new Set(decisions.map((d) => d.rule))).toEqual(new Set(["store-unavailable"]));
    expect((await health).body.checks?.store).toBe("down");
    await until(
      "decisions to recover",
      async () => ((await decide(200)).verdict === "allow" ? true : undefined),
      30_000,
    );
    expect(serve.stderr()).not.toMatch(/Unhandled error event/);
  }, 60_000);
});
