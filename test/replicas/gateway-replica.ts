// One gateway replica for the multi-replica test, run as
// `node --import tsx gateway-replica.ts REDIS_PREFIX PG_SCHEMA REPLICA CALLS`.
// It builds a Warden on a Redis state store and a PostgreSQL audit sink, meets the other replica
// at a barrier in Redis, fires CALLS concurrent decisions and prints {"limited": n, "bought": n}.
import { Redis } from "ioredis";
import { PostgresAuditSink } from "../../src/audit/postgres-sink.js";
import { Warden } from "../../src/gateway/index.js";
import { RedisStateStore } from "../../src/stores/redis/index.js";

const [prefix, schema, replica, callsArg] = process.argv.slice(2);
const calls = Number(callsArg);
const policy = {
  version: 1,
  allow: ["pay", "buy"],
  tools: { buy: { cost: 0.1 } },
  limits: [{ name: "pay-limit", when: { tool: "pay" }, max: 37, per: "global" }],
  budget: { max: 3, per: "global" },
};

const store = new RedisStateStore({ url: "redis://127.0.0.1:6379", prefix });
const audit = await PostgresAuditSink.open({
  connection: { host: "127.0.0.1", port: 5432, user: "postgres", database: "test" },
  schema,
  chain: `replica-${replica}`,
  key: "replica-test-audit-key-0123456789",
});
const warden = Warden.fromObject(policy, { store, audit });

const redis = new Redis({ host: "127.0.0.1", port: 6379 });
await redis.incr(`${prefix}barrier`);
const deadline = Date.now() + 20_000;
while (Number(await redis.get(`${prefix}barrier`)) < 2) {
  if (Date.now() > deadline) throw new Error("the other replica never arrived");
  await new Promise((resolve) => setTimeout(resolve, 2));
}

const decisions = await Promise.all(
  Array.from({ length: calls }, (_, i) =>
    warden.decide({ tool: i % 2 ? "pay" : "buy", agent: { id: `agent-${replica}` }, args: { n: i } }),
  ),
);
const count = (tool: string) => decisions.filter((d) => d.tool === tool && d.verdict === "allow").length;
await warden.close();
await redis.quit();
process.stdout.write(`${JSON.stringify({ limited: count("pay"), bought: count("buy") })}\n`);
