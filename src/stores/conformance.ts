import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { createStateStore } from "./create.js";
import type { Approval, LimitBucket, StateStore } from "./types.js";

/** How the conformance suite gets stores of one implementation. */
export interface StoreHarness {
  /** Name shown in the test titles. */
  name: string;
  /** A fresh store with empty state. */
  create(): Promise<StateStore>;
  /**
   * A second store on the same state as `store` (another replica, or the same file after a
   * restart); leave out for stores whose state lives only in one object.
   */
  reopen?(store: StateStore): Promise<StateStore>;
  /** Closes a store and removes what it left behind (default: `close()`). */
  destroy?(store: StateStore): Promise<void>;
  /** A reason to skip the whole suite (e.g. the server is not running), or false. */
  skip?: string | false;
}

const T0 = 1_700_000_000_000;

function approval(overrides: Partial<Approval> = {}): Approval {
  return {
    id: "ap-1",
    status: "pending",
    callHash: "hash-1",
    tool: "send_email",
    server: "mail",
    agent: "bot-1",
    session: "s-1",
    rule: "ask-emails",
    reason: "emails need approval",
    argsSummary: '{"to":"a@example.com"}',
    createdAt: T0,
    expiresAt: T0 + 60_000,
    ...overrides,
  };
}

/**
 * Registers the shared `StateStore` tests for one implementation. Every store must pass these
 * unchanged: window edges, totals, all-or-nothing buckets, trip data, exact spend, seen labels and
 * the approval lifecycle, plus concurrent use through one store (and through two when the harness
 * can `reopen`).
 */
export function describeStateStore(harness: StoreHarness): void {
  describe.skipIf(harness.skip !== undefined && harness.skip !== false)(`StateStore: ${harness.name}`, () => {
    const open: StateStore[] = [];
    const create = async () => {
      const store = await harness.create();
      open.push(store);
      return store;
    };
    const reopen = harness.reopen;

    afterEach(async () => {
      for (const store of open.splice(0)) {
        if (harness.destroy) await harness.destroy(store);
        else await store.close();
      }
    });

    describe("sliding windows", () => {
      const bucket: LimitBucket = { key: "limit:http:agent:a", limit: 3, windowMs: 1000 };

      it("counts calls until the limit, then reports the trip with count and resetAt", async () => {
        const store = await create();
        for (const t of [0, 100, 200]) expect(await store.consume([bucket], T0 + t)).toEqual([]);
        expect(await store.consume([bucket], T0 + 500)).toEqual([
          { key: bucket.key, limit: 3, count: 3, resetAt: T0 + 1000 },
        ]);
      });

      it.each([
        { at: 999, allowed: false, why: "one ms before the first call leaves" },
        { at: 1000, allowed: true, why: "exactly at window end the first call has left" },
        { at: 1001, allowed: true, why: "after window end" },
      ])("a call at +$at ms is allowed=$allowed ($why)", async ({ at, allowed }) => {
        const store = await create();
        for (const t of [0, 100, 200]) await store.consume([bucket], T0 + t);
        const trips = await store.consume([bucket], T0 + at);
        expect(trips.length === 0).toBe(allowed);
      });

      it("keeps sliding: after one call leaves, the next trip resets when the next oldest leaves", async () => {
        const store = await create();
        for (const t of [0, 100, 200]) await store.consume([bucket], T0 + t);
        expect(await store.consume([bucket], T0 + 1000)).toEqual([]);
        expect(await store.consume([bucket], T0 + 1050)).toEqual([
          { key: bucket.key, limit: 3, count: 3, resetAt: T0 + 1100 },
        ]);
        // A refused call is not counted: at +1100 only the calls at 200 and 1000 remain.
        expect(await store.consume([bucket], T0 + 1100)).toEqual([]);
        expect(await store.consume([bucket], T0 + 1150)).toEqual([
          { key: bucket.key, limit: 3, count: 3, resetAt: T0 + 1200 },
        ]);
      });

      it("empties completely after a whole window without calls", async () => {
        const store = await create();
        for (const t of [0, 1, 2]) await store.consume([bucket], T0 + t);
        for (const t of [5000, 5001, 5002]) expect(await store.consume([bucket], T0 + t)).toEqual([]);
      });

      it("keeps keys apart", async () => {
        const store = await create();
        const other = { ...bucket, key: "limit:http:agent:b" };
        for (const t of [0, 1, 2]) await store.consume([bucket], T0 + t);
        expect(await store.consume([other], T0 + 3)).toEqual([]);
        expect(await store.consume([bucket], T0 + 3)).toHaveLength(1);
      });

      it("peek reports the same trips and counts nothing", async () => {
        const store = await create();
        for (let i = 0; i < 10; i++) expect(await store.peek([bucket], T0)).toEqual([]);
        for (const t of [0, 100, 200]) expect(await store.consume([bucket], T0 + t)).toEqual([]);
        expect(await store.peek([bucket], T0 + 300)).toEqual([
          { key: bucket.key, limit: 3, count: 3, resetAt: T0 + 1000 },
        ]);
        expect(await store.peek([bucket], T0 + 1000)).toEqual([]);
      });

      it("a limit of 0 refuses every call with resetAt null", async () => {
        const store = await create();
        const zero = { key: "zero", limit: 0, windowMs: 1000 };
        expect(await store.consume([zero], T0)).toEqual([{ key: "zero", limit: 0, count: 0, resetAt: null }]);
      });
    });

    describe("totals", () => {
      const total: LimitBucket = { key: "limit:emails:session:s", limit: 2, windowMs: 0 };

      it("counts for ever: the third call trips, even much later, with resetAt null", async () => {
        const store = await create();
        expect(await store.consume([total], T0)).toEqual([]);
        expect(await store.consume([total], T0 + 1)).toEqual([]);
        for (const later of [2, 86_400_000, 10 * 365 * 86_400_000]) {
          expect(await store.consume([total], T0 + later)).toEqual([
            { key: total.key, limit: 2, count: 2, resetAt: null },
          ]);
        }
        expect(await store.peek([total], T0)).toEqual([
          { key: total.key, limit: 2, count: 2, resetAt: null },
        ]);
      });
    });

    describe("several buckets in one call", () => {
      const small: LimitBucket = { key: "small", limit: 1, windowMs: 60_000 };
      const big: LimitBucket = { key: "big", limit: 5, windowMs: 60_000 };
      const total: LimitBucket = { key: "total", limit: 3, windowMs: 0 };

      it("if one bucket is full, none is counted", async () => {
        const store = await create();
        expect(await store.consume([small, big, total], T0)).toEqual([]);
        expect(await store.consume([small, big, total], T0 + 1)).toEqual([
          { key: "small", limit: 1, count: 1, resetAt: T0 + 60_000 },
        ]);
        // `big` and `total` hold one call each, not two.
        expect(await store.consume([big, total], T0 + 2)).toEqual([]);
        expect(await store.consume([big, total], T0 + 3)).toEqual([]);
        expect(await store.consume([big, total], T0 + 4)).toEqual([
          { key: "total", limit: 3, count: 3, resetAt: null },
        ]);
        for (const t of [5, 6]) expect(await store.consume([big], T0 + t)).toEqual([]);
        expect(await store.consume([big], T0 + 7)).toEqual([
          { key: "big", limit: 5, count: 5, resetAt: T0 + 60_000 },
        ]);
      });

      it("reports every full bucket, in the order given", async () => {
        const store = await create();
        await store.consume([small, total], T0);
        await store.consume([total], T0);
        await store.consume([total], T0);
        expect(await store.consume([total, big, small], T0 + 10)).toEqual([
          { key: "total", limit: 3, count: 3, resetAt: null },
          { key: "small", limit: 1, count: 1, resetAt: T0 + 60_000 },
        ]);
      });

      it("an empty list of buckets always has room", async () => {
        const store = await create();
        expect(await store.consume([], T0)).toEqual([]);
        expect(await store.peek([], T0)).toEqual([]);
      });
    });

    describe("spend", () => {
      it("adds exactly: ten spends of 0.1 reach 1 with nothing left over", async () => {
        const store = await create();
        let last = { ok: false, spent: 0, remaining: 0 };
        for (let i = 0; i < 10; i++) {
          last = await store.spend({ key: "budget:s", amount: 0.1, max: 1 });
          expect(last.ok).toBe(true);
        }
        expect(last).toEqual({ ok: true, spent: 1, remaining: 0 });
        expect(await store.spent("budget:s")).toBe(1);
      });

      it.each([
        { amounts: [0.1, 0.2], max: 0.3, spent: 0.3, refused: [] as number[] },
        { amounts: [2, 2, 2], max: 5, spent: 4, refused: [2] },
        { amounts: [4.99, 0.02, 0.01], max: 5, spent: 5, refused: [1] },
        { amounts: [6], max: 5, spent: 0, refused: [0] },
        { amounts: [0, 0], max: 0, spent: 0, refused: [] },
        { amounts: [-1, Number.NaN, 1], max: 5, spent: 1, refused: [0, 1] },
      ])(
        "spends $amounts under max $max: total $spent, refused $refused",
        async ({ amounts, max, spent, refused }) => {
          const store = await create();
          const refusedAt: number[] = [];
          for (const [i, amount] of amounts.entries()) {
            const before = await store.spent("k");
            const result = await store.spend({ key: "k", amount, max });
            if (!result.ok) {
              refusedAt.push(i);
              expect(result.spent).toBe(before);
            }
            expect(result.remaining).toBeCloseTo(max - result.spent, 9);
          }
          expect(refusedAt).toEqual(refused);
          expect(await store.spent("k")).toBe(spent);
        },
      );

      it("keeps keys apart and reports 0 for an unknown key", async () => {
        const store = await create();
        await store.spend({ key: "a", amount: 1.5, max: 10 });
        expect(await store.spent("a")).toBe(1.5);
        expect(await store.spent("b")).toBe(0);
      });
    });

    describe("seen labels", () => {
      it("accumulates a set per session", async () => {
        const store = await create();
        expect(await store.seen("s1")).toEqual([]);
        expect((await store.addSeen("s1", ["untrusted", "private"])).sort()).toEqual([
          "private",
          "untrusted",
        ]);
        expect((await store.addSeen("s1", ["private", "user"])).sort()).toEqual([
          "private",
          "untrusted",
          "user",
        ]);
        expect((await store.addSeen("s1", [])).sort()).toEqual(["private", "untrusted", "user"]);
        expect((await store.seen("s1")).sort()).toEqual(["private", "untrusted", "user"]);
        expect(await store.seen("s2")).toEqual([]);
        expect(await store.addSeen("s3", [])).toEqual([]);
      });
    });

    describe("approvals", () => {
      it("stores and returns an approval; unknown ids are undefined", async () => {
        const store = await create();
        await store.putApproval(approval());
        expect(await store.getApproval("ap-1")).toEqual(approval());
        expect(await store.getApproval("nope")).toBeUndefined();
      });

      it("returns copies: changing a returned approval does not change the store", async () => {
        const store = await create();
        const original = approval();
        await store.putApproval(original);
        original.status = "approved";
        const got = (await store.getApproval("ap-1"))!;
        expect(got.status).toBe("pending");
        got.status = "approved";
        expect((await store.getApproval("ap-1"))!.status).toBe("pending");
      });

      it("pending -> approved -> used once", async () => {
        const store = await create();
        await store.putApproval(approval());
        const decided = await store.decideApproval("ap-1", "approved", "alice", "looks fine", T0 + 10);
        expect(decided).toEqual({
          ...approval(),
          status: "approved",
          decidedAt: T0 + 10,
          decidedBy: "alice",
          decisionReason: "looks fine",
        });
        expect(await store.useApproval("other-hash", T0 + 20)).toBeUndefined();
        expect((await store.useApproval("hash-1", T0 + 20))?.status).toBe("used");
        expect(await store.useApproval("hash-1", T0 + 21)).toBeUndefined();
        expect((await store.getApproval("ap-1"))?.status).toBe("used");
      });

      it("a pending approval cannot be used", async () => {
        const store = await create();
        await store.putApproval(approval());
        expect(await store.useApproval("hash-1", T0 + 1)).toBeUndefined();
        expect((await store.getApproval("ap-1"))?.status).toBe("pending");
      });

      it("denied: cannot be used or decided again; no reason is kept as none", async () => {
        const store = await create();
        await store.putApproval(approval());
        const denied = await store.decideApproval("ap-1", "denied", "bob", undefined, T0 + 5);
        expect(denied?.status).toBe("denied");
        expect(denied?.decisionReason).toBeUndefined();
        expect(await store.useApproval("hash-1", T0 + 6)).toBeUndefined();
        expect(await store.decideApproval("ap-1", "approved", "mallory", "x", T0 + 7)).toBeUndefined();
        expect((await store.getApproval("ap-1"))?.status).toBe("denied");
      });

      it("deciding twice fails and keeps the first decision", async () => {
        const store = await create();
        await store.putApproval(approval());
        expect(await store.decideApproval("ap-1", "approved", "alice", undefined, T0 + 1)).toBeDefined();
        expect(await store.decideApproval("ap-1", "denied", "bob", undefined, T0 + 2)).toBeUndefined();
        expect(await store.decideApproval("ap-1", "approved", "bob", undefined, T0 + 2)).toBeUndefined();
        const stored = await store.getApproval("ap-1");
        expect([stored?.status, stored?.decidedBy, stored?.decidedAt]).toEqual(["approved", "alice", T0 + 1]);
        expect(await store.decideApproval("missing", "approved", "bob", undefined, T0 + 2)).toBeUndefined();
      });

      it("expired at expiresAt: a pending one cannot be approved", async () => {
        const store = await create();
        await store.putApproval(approval());
        expect(
          await store.decideApproval("ap-1", "approved", "alice", undefined, T0 + 60_000),
        ).toBeUndefined();
        expect((await store.getApproval("ap-1"))?.status).toBe("expired");
        expect(await store.useApproval("hash-1", T0 + 60_001)).toBeUndefined();
      });

      it("expired at expiresAt: an approved one cannot be used", async () => {
        const store = await create();
        await store.putApproval(approval());
        await store.decideApproval("ap-1", "approved", "alice", undefined, T0 + 59_999);
        expect(await store.useApproval("hash-1", T0 + 60_000)).toBeUndefined();
        expect((await store.getApproval("ap-1"))?.status).toBe("expired");
      });

      it("one use per approval when several share a call hash, oldest first", async () => {
        const store = await create();
        await store.putApproval(approval({ id: "late", createdAt: T0 + 5 }));
        await store.putApproval(approval({ id: "early", createdAt: T0 }));
        await store.putApproval(approval({ id: "other", callHash: "hash-2" }));
        for (const id of ["late", "early", "other"])
          await store.decideApproval(id, "approved", "a", undefined, T0 + 9);
        expect((await store.useApproval("hash-1", T0 + 10))?.id).toBe("early");
        expect((await store.useApproval("hash-1", T0 + 10))?.id).toBe("late");
        expect(await store.useApproval("hash-1", T0 + 10)).toBeUndefined();
        expect((await store.getApproval("other"))?.status).toBe("approved");
      });

      it("lists by creation time, filtered by status", async () => {
        const store = await create();
        await store.putApproval(approval({ id: "b", createdAt: T0 + 2, callHash: "h-b" }));
        await store.putApproval(approval({ id: "a", createdAt: T0 + 1, callHash: "h-a" }));
        await store.putApproval(approval({ id: "c", createdAt: T0 + 3, callHash: "h-c" }));
        await store.decideApproval("c", "denied", "bob", undefined, T0 + 4);
        expect((await store.listApprovals()).map((a) => a.id)).toEqual(["a", "b", "c"]);
        expect((await store.listApprovals({ status: "pending" })).map((a) => a.id)).toEqual(["a", "b"]);
        expect((await store.listApprovals({ status: "denied" })).map((a) => a.status)).toEqual(["denied"]);
        expect(await store.listApprovals({ status: "used" })).toEqual([]);
      });

      it("putApproval replaces an approval with the same id, including its call hash", async () => {
        const store = await create();
        await store.putApproval(approval());
        await store.putApproval(approval({ callHash: "hash-new", reason: "again" }));
        expect((await store.getApproval("ap-1"))?.reason).toBe("again");
        await store.decideApproval("ap-1", "approved", "a", undefined, T0 + 1);
        expect(await store.useApproval("hash-1", T0 + 2)).toBeUndefined();
        expect((await store.useApproval("hash-new", T0 + 2))?.id).toBe("ap-1");
        expect(await store.listApprovals()).toHaveLength(1);
      });

      it("expireApprovals expires due pending and approved ones, and later forgets finished ones", async () => {
        const store = await create();
        await store.putApproval(approval({ id: "due", callHash: "h1" }));
        await store.putApproval(approval({ id: "approved-due", callHash: "h2" }));
        await store.putApproval(approval({ id: "later", callHash: "h3", expiresAt: T0 + 120_000 }));
        await store.decideApproval("approved-due", "approved", "a", undefined, T0 + 1);
        const expired = await store.expireApprovals(T0 + 60_000);
        expect(expired.map((a) => [a.id, a.status]).sort()).toEqual([
          ["approved-due", "expired"],
          ["due", "expired"],
        ]);
        expect(await store.expireApprovals(T0 + 60_000)).toEqual([]);
        expect((await store.getApproval("later"))?.status).toBe("pending");
        expect(await store.useApproval("h2", T0 + 60_001)).toBeUndefined();
        // Long after the retention, finished approvals are gone; the later one expires then.
        const muchLater = T0 + 365 * 86_400_000;
        expect((await store.expireApprovals(muchLater)).map((a) => a.id)).toEqual(["later"]);
        await store.expireApprovals(muchLater + 365 * 86_400_000);
        expect(await store.listApprovals()).toEqual([]);
        expect(await store.getApproval("due")).toBeUndefined();
      });
    });

    describe("concurrent use of one store", () => {
      it("30 concurrent consumes on a limit of 7: exactly 7 allowed", async () => {
        const store = await create();
        const bucket = { key: "race", limit: 7, windowMs: 60_000 };
        const results = await Promise.all(Array.from({ length: 30 }, () => store.consume([bucket], T0)));
        expect(results.filter((trips) => trips.length === 0)).toHaveLength(7);
      });

      it("concurrent spends never exceed max", async () => {
        const store = await create();
        const results = await Promise.all(
          Array.from({ length: 30 }, () => store.spend({ key: "race", amount: 0.3, max: 2 })),
        );
        expect(results.filter((r) => r.ok)).toHaveLength(6);
        expect(await store.spent("race")).toBe(1.8);
      });

      it("concurrent decisions: exactly one wins", async () => {
        const store = await create();
        await store.putApproval(approval());
        const decisions = await Promise.all([
          store.decideApproval("ap-1", "approved", "alice", undefined, T0 + 1),
          store.decideApproval("ap-1", "denied", "bob", undefined, T0 + 1),
          store.decideApproval("ap-1", "approved", "carol", undefined, T0 + 1),
        ]);
        const winners = decisions.filter((d) => d !== undefined);
        expect(winners).toHaveLength(1);
        expect((await store.getApproval("ap-1"))?.decidedBy).toBe(winners[0]?.decidedBy);
      });

      it("concurrent uses of one approval: exactly one succeeds", async () => {
        const store = await create();
        await store.putApproval(approval());
        await store.decideApproval("ap-1", "approved", "alice", undefined, T0 + 1);
        const uses = await Promise.all(Array.from({ length: 5 }, () => store.useApproval("hash-1", T0 + 2)));
        expect(uses.filter((u) => u !== undefined)).toHaveLength(1);
      });
    });

    describe.skipIf(reopen === undefined)("shared state", () => {
      it("a second handle sees and respects what the first counted, spent, saw and approved", async () => {
        const first = await create();
        const bucket = { key: "shared", limit: 2, windowMs: 60_000 };
        await first.consume([bucket], T0);
        await first.spend({ key: "b", amount: 0.7, max: 1 });
        await first.addSeen("s", ["untrusted"]);
        await first.putApproval(approval());
        await first.decideApproval("ap-1", "approved", "alice", undefined, T0 + 1);

        const second = await reopen!(first);
        open.push(second);
        expect(await second.consume([bucket], T0 + 1)).toEqual([]);
        expect(await first.consume([bucket], T0 + 2)).toEqual([
          { key: "shared", limit: 2, count: 2, resetAt: T0 + 60_000 },
        ]);
        expect(await second.spend({ key: "b", amount: 0.4, max: 1 })).toMatchObject({
          ok: false,
          spent: 0.7,
        });
        expect(await second.seen("s")).toEqual(["untrusted"]);
        expect((await second.useApproval("hash-1", T0 + 2))?.status).toBe("used");
        expect(await first.useApproval("hash-1", T0 + 3)).toBeUndefined();
      });

      it("two handles racing on one bucket: exactly the limit is allowed", async () => {
        const first = await create();
        const second = await reopen!(first);
        open.push(second);
        const bucket = { key: "race2", limit: 9, windowMs: 0 };
        const results = await Promise.all(
          Array.from({ length: 40 }, (_, i) => (i % 2 ? first : second).consume([bucket], T0)),
        );
        expect(results.filter((trips) => trips.length === 0)).toHaveLength(9);
      });
    });
  });
}

const HAMMER = fileURLToPath(new URL("./fixtures/hammer.mjs", import.meta.url));

interface HammerResult {
  allowed: number;
  spent: number;
}

/** Runs one hammer child to its end and returns its counts. */
function runHammer(url: string, calls: number, now: number): Promise<HammerResult> {
  const child = spawn(process.execPath, ["--import", "tsx", HAMMER, url, String(calls), String(now)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  return new Promise<HammerResult>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      const last = stdout.trim().split("\n").at(-1) ?? "";
      if (code === 0 && last.startsWith("{")) resolve(JSON.parse(last) as HammerResult);
      else reject(new Error(`hammer child exited with ${code}: ${stderr || stdout}`));
    });
  });
}

/**
 * Registers a test where two OS processes race on one store URL (see fixtures/hammer.mjs): each
 * makes 300 calls against a window limit of 250 and spends 0.01 per call under a max of 2.5.
 * Exactly 250 calls may pass, the total counter must agree, and exactly 250 spends may succeed.
 */
export function describeTwoProcessRace(options: {
  name: string;
  url: () => string;
  skip?: string | false;
}): void {
  describe.skipIf(options.skip !== undefined && options.skip !== false)(
    `two processes: ${options.name}`,
    () => {
      it("two processes hammering one limit and one budget: exactly 250 allowed, spend never above max", async () => {
        const url = options.url();
        const calls = 300;
        const results = await Promise.all([runHammer(url, calls, T0), runHammer(url, calls, T0)]);
        expect(results.reduce((sum, r) => sum + r.allowed, 0)).toBe(250);
        expect(results.reduce((sum, r) => sum + r.spent, 0)).toBe(250);
        const store = await createStateStore(url);
        try {
          expect(await store.spent("hammer:budget")).toBe(2.5);
          // All-or-nothing across processes: the total counted exactly the calls the window allowed.
          expect(await store.peek([{ key: "hammer:total", limit: 250, windowMs: 0 }], T0)).toEqual([
            { key: "hammer:total", limit: 250, count: 250, resetAt: null },
          ]);
          expect(await store.peek([{ key: "hammer:total", limit: 251, windowMs: 0 }], T0)).toEqual([]);
        } finally {
          await store.close();
        }
      });
    },
  );
}
