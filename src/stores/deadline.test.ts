import { describe, expect, it } from "vitest";
import { StoreUnavailableError, withDeadline, withStoreDeadlines } from "./deadline.js";
import type { StateStore } from "./types.js";

const never = () => new Promise<never>(() => {});
const answerIn = <T>(ms: number, value: T) =>
  new Promise<T>((resolve) => setTimeout(() => resolve(value), ms));
const timers = () => process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length;

/** A store whose `spent` answers after `delay` ms (never, when undefined). */
function slowStore(delay: () => number | undefined): StateStore {
  return {
    kind: "slow",
    spent: () => {
      const ms = delay();
      return ms === undefined ? never() : answerIn(ms, 7);
    },
  } as unknown as StateStore;
}

describe("withDeadline", () => {
  it("rejects an operation that does not answer, naming the store, once its time is up and not before", async () => {
    const started = performance.now();
    const error = await withDeadline(never, 40, "redis", "`spent`").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as Error).message).toBe("state store `redis` did not answer `spent` within 40 ms");
    expect(performance.now() - started).toBeGreaterThanOrEqual(39);
  });

  it("gives each operation its own full time, whenever it began", async () => {
    const first = withDeadline(never, 60, "redis", "`a`");
    await answerIn(30, undefined);
    let secondDone = false;
    const second = withDeadline(never, 60, "redis", "`b`").catch((e: Error) => {
      secondDone = true;
      return e;
    });
    await expect(first).rejects.toThrow("`a`");
    expect(secondDone).toBe(false);
    expect((await second).message).toContain("`b`");
  });

  it("turns a failure into StoreUnavailableError with the cause", async () => {
    const cause = new Error("ECONNREFUSED");
    const error = await withDeadline(() => Promise.reject(cause), 1000, "redis", "`spent`").catch((e) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(error.message).toBe("state store `redis` failed `spent`: ECONNREFUSED");
    expect(error.cause).toBe(cause);
  });

  it("holds one timer for any number of pending operations, and none once all have answered", async () => {
    const before = timers();
    const answers: Array<(value: number) => void> = [];
    const pending = Array.from({ length: 200 }, () =>
      withDeadline(() => new Promise<number>((resolve) => answers.push(resolve)), 5000, "redis", "`spent`"),
    );
    expect(timers() - before).toBe(1);
    for (const [i, answer] of answers.entries()) answer(i);
    expect(await Promise.all(pending)).toEqual(answers.map((_, i) => i));
    expect(timers()).toBe(before);
  });
});

describe("withStoreDeadlines", () => {
  it("marks the store down after a missed deadline and up at the next answer in time", async () => {
    let delay: number | undefined = 1;
    const changes: boolean[] = [];
    const store = withStoreDeadlines(
      slowStore(() => delay),
      { timeoutMs: 30, onChange: (health) => changes.push(health.ok) },
    ) as StateStore & { health(): { ok: boolean; error?: string } };
    expect(await store.spent("k")).toBe(7);
    delay = undefined;
    await expect(store.spent("k")).rejects.toThrow("state store `slow` did not answer `spent` within 30 ms");
    expect(store.health()).toMatchObject({ ok: false, error: expect.stringContaining("within 30 ms") });
    delay = 1;
    expect(await store.spent("k")).toBe(7);
    expect(store.health().ok).toBe(true);
    expect(changes).toEqual([false, true]);
  });

  it("does not count an answer that comes after the deadline as the store being back", async () => {
    const store = withStoreDeadlines(
      slowStore(() => 60),
      { timeoutMs: 20 },
    ) as StateStore & { health(): { ok: boolean } };
    await expect(store.spent("k")).rejects.toThrow("did not answer");
    await answerIn(80, undefined);
    expect(store.health().ok).toBe(false);
  });
});
