import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { describeStateStore, describeTwoProcessRace } from "../conformance.js";
import { createStateStore } from "../create.js";
import type { StateStore } from "../types.js";
import { RedisStateStore } from "./redis-store.js";

const REDIS_URL = process.env.TW_REDIS_URL ?? "redis://127.0.0.1:6379/0";
const RUN = `tw-test:${randomBytes(4).toString("hex")}:`;

async function reachable(): Promise<boolean> {
  const probe = new Redis(REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
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

// Without a server the suites are skipped; in CI one test fails instead (fast, with the reason).
const up = await reachable();
const skip = up ? false : `redis not reachable at ${REDIS_URL}`;
if (skip && process.env.CI === "true") {
  it("redis server is reachable (required when CI=true)", () => {
    throw new Error(skip);
  });
} else if (skip) {
  console.warn(`skipping RedisStateStore tests: ${skip} (with CI=true this fails instead)`);
}

let stores = 0;
const prefixes = new WeakMap<StateStore, string>();
function open(prefix: string): RedisStateStore {
  const store = new RedisStateStore({ url: REDIS_URL, prefix });
  prefixes.set(store, prefix);
  return store;
}

async function deleteKeys(prefix: string): Promise<number> {
  const client = new Redis(REDIS_URL);
  let deleted = 0;
  try {
    for await (const keys of client.scanStream({ match: `${prefix}*`, count: 500 })) {
      if ((keys as string[]).length > 0) deleted += await client.unlink(...(keys as string[]));
    }
  } finally {
    client.disconnect();
  }
  return deleted;
}

afterAll(async () => {
  if (up) await deleteKeys(RUN);
});

describeStateStore({
  name: "redis",
  skip,
  create: async () => open(`${RUN}${stores++}:`),
  reopen: async (store) => open(prefixes.get(store)!),
});

describeTwoProcessRace({ name: "redis", skip, url: () => `${REDIS_URL}?prefix=${RUN}race${stores++}:` });

describe.skipIf(skip)("RedisStateStore", () => {
  it("200 concurrent consumes from two connections on a limit of 37: exactly 37 allowed", async () => {
    const prefix = `${RUN}c200:`;
    const [a, b] = [open(prefix), open(prefix)];
    try {
      const bucket = { key: "hot", limit: 37, windowMs: 60_000 };
      const now = Date.now();
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? a : b).consume([bucket], now)),
      );
      expect(results.filter((trips) => trips.length === 0)).toHaveLength(37);
      expect(await a.peek([bucket], now)).toEqual([
        { key: "hot", limit: 37, count: 37, resetAt: now + 60_000 },
      ]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("window keys get a TTL of the window plus slack; totals and spend keep none", async () => {
    const prefix = `${RUN}ttl:`;
    const store = open(prefix);
    const client = new Redis(REDIS_URL);
    try {
      await store.consume(
        [
          { key: "w", limit: 5, windowMs: 30_000 },
          { key: "t", limit: 5, windowMs: 0 },
        ],
        Date.now(),
      );
      await store.spend({ key: "s", amount: 1, max: 2 });
      const ttl = await client.pttl(`${prefix}w:w`);
      expect(ttl).toBeGreaterThan(25_000);
      expect(ttl).toBeLessThanOrEqual(31_000);
      expect(await client.pttl(`${prefix}t:t`)).toBe(-1);
      expect(await client.get(`${prefix}s:s`)).toBe("1000000");
    } finally {
      client.disconnect();
      await store.close();
    }
  });

  it("prefixes keep stores apart", async () => {
    const [a, b] = [open(`${RUN}iso-a:`), open(`${RUN}iso-b:`)];
    try {
      const bucket = { key: "k", limit: 1, windowMs: 0 };
      expect(await a.consume([bucket], 1)).toEqual([]);
      expect(await b.consume([bucket], 1)).toEqual([]);
      await a.addSeen("s", ["x"]);
      expect(await b.seen("s")).toEqual([]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("reloads its scripts after SCRIPT FLUSH", async () => {
    const store = open(`${RUN}flush:`);
    const client = new Redis(REDIS_URL);
    try {
      expect(await store.consume([{ key: "k", limit: 2, windowMs: 0 }], 1)).toEqual([]);
      await client.script("FLUSH");
      expect(await store.consume([{ key: "k", limit: 2, windowMs: 0 }], 2)).toEqual([]);
      expect(await store.consume([{ key: "k", limit: 2, windowMs: 0 }], 3)).toHaveLength(1);
    } finally {
      client.disconnect();
      await store.close();
    }
  });

  it("createStateStore reads the prefix from the url and does not pass it to ioredis", async () => {
    const store = await createStateStore(`${REDIS_URL}?prefix=${RUN}url:`);
    try {
      expect(store.kind).toBe("redis");
      expect((store as RedisStateStore).prefix).toBe(`${RUN}url:`);
      await store.spend({ key: "k", amount: 0.5, max: 1 });
      expect(await open(`${RUN}url:`).spent("k")).toBe(0.5);
    } finally {
      await store.close();
    }
  });
});
