import { describe, expect, it } from "vitest";
import { describeStateStore } from "../conformance.js";
import { MemoryStateStore } from "./memory-store.js";

describeStateStore({ name: "memory", create: async () => new MemoryStateStore() });

describe("MemoryStateStore memory bound", () => {
  const windowsOf = (store: MemoryStateStore) =>
    (store as unknown as { windows: Map<string, unknown> }).windows;

  it("forgets windows whose calls have all left, once the sweep interval has passed", async () => {
    const store = new MemoryStateStore({ sweepIntervalMs: 60_000 });
    for (let i = 0; i < 500; i++) await store.consume([{ key: `k${i}`, limit: 5, windowMs: 1000 }], i);
    expect(windowsOf(store).size).toBe(500);
    await store.consume([{ key: "live", limit: 5, windowMs: 1000 }], 60_000);
    expect([...windowsOf(store).keys()]).toEqual(["live"]);
  });

  it("sweeps early when the number of windows doubles, keeping live ones", async () => {
    const store = new MemoryStateStore({ sweepIntervalMs: Number.POSITIVE_INFINITY });
    await store.consume([{ key: "long", limit: 5, windowMs: 1_000_000 }], 0);
    for (let i = 0; i < 1100; i++) await store.consume([{ key: `k${i}`, limit: 5, windowMs: 10 }], 100 + i);
    // Without the sweep at 1025 windows there would be 1101; after it, only the last ~90 remain.
    expect(windowsOf(store).size).toBeLessThan(100);
    expect(windowsOf(store).has("long")).toBe(true);
    expect(await store.peek([{ key: "long", limit: 1, windowMs: 1_000_000 }], 2000)).toHaveLength(1);
  });

  it("grows a window past its first capacity and stays exact", async () => {
    const store = new MemoryStateStore();
    const bucket = { key: "big", limit: 100, windowMs: 1000 };
    for (let i = 0; i < 100; i++) expect(await store.consume([bucket], i)).toEqual([]);
    expect(await store.consume([bucket], 100)).toEqual([
      { key: "big", limit: 100, count: 100, resetAt: 1000 },
    ]);
    // Wrap the ring: slide by 50, add 50 more.
    for (let i = 0; i < 50; i++) expect(await store.consume([bucket], 1000 + i)).toEqual([]);
    expect(await store.consume([bucket], 1049)).toEqual([
      { key: "big", limit: 100, count: 100, resetAt: 2000 - 950 },
    ]);
  });
});
