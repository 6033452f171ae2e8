import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { createStateStore } from "./create.js";
import { SESSION_OVERFLOW } from "./types.js";
import type { Approval, LimitBucket, SessionLimits, StateStore } from "./types.js";

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

const LIMITS: SessionLimits = { ttlMs: 60_000, maxSessions: 1000, maxPerOwner: 100, maxBytes: 1 << 20 };

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

    describe("sessions", () => {
      it("opens once: the first opener is the owner, later opens join and see owner and meta", async () => {
        const store = await create();
        expect(await store.openSession("s1", { owner: "bot-a", meta: '{"task":"t"}' }, LIMITS, T0)).toEqual({
          ok: true,
          created: true,
          owner: "bot-a",
          meta: '{"task":"t"}',
        });
        expect(await store.openSession("s1", { owner: "bot-b" }, LIMITS, T0 + 1)).toEqual({
          ok: true,
          created: false,
          owner: "bot-a",
          meta: '{"task":"t"}',
        });
        expect(await store.openSession("s2", {}, LIMITS, T0)).toMatchObject({ ok: true, created: true });
        expect((await store.readSession("s2", 0, LIMITS, T0))?.owner).toBeUndefined();
      });

      it("appends in order, reads what came after a sequence number, and unknown sessions read as undefined", async () => {
        const store = await create();
        expect(await store.readSession("s1", 0, LIMITS, T0)).toBeUndefined();
        expect(await store.appendSession("s1", ["x"], LIMITS, T0)).toBeUndefined();
        await store.openSession("s1", { owner: "a" }, LIMITS, T0);
        expect(await store.readSession("s1", 0, LIMITS, T0)).toMatchObject({ seq: 0, entries: [] });
        expect(await store.appendSession("s1", ["e1", "e2"], LIMITS, T0)).toBe(2);
        expect(await store.appendSession("s1", ["e3 ünïcode"], LIMITS, T0)).toBe(3);
        expect(await store.readSession("s1", 0, LIMITS, T0)).toMatchObject({
          seq: 3,
          entries: ["e1", "e2", "e3 ünïcode"],
        });
        expect((await store.readSession("s1", 2, LIMITS, T0))?.entries).toEqual(["e3 ünïcode"]);
        expect((await store.readSession("s1", 3, LIMITS, T0))?.entries).toEqual([]);
      });

      it("past maxBytes appends the overflow entry once instead, and nothing after it", async () => {
        const store = await create();
        const limits = { ...LIMITS, maxBytes: 10 };
        await store.openSession("s1", {}, limits, T0);
        expect(await store.appendSession("s1", ["12345", "123"], limits, T0)).toBe(2);
        // 8 + 4 > 10: the whole append is refused, not half of it.
        expect(await store.appendSession("s1", ["ab", "cd"], limits, T0)).toBe(3);
        expect(await store.appendSession("s1", ["z"], limits, T0)).toBe(3);
        expect((await store.readSession("s1", 0, limits, T0))?.entries).toEqual([
          "12345",
          "123",
          SESSION_OVERFLOW,
        ]);
      });

      it("counts decisions and keeps blocked flows for the report", async () => {
        const store = await create();
        expect(await store.noteSession("s1", { tool: "t", verdict: "allow" }, LIMITS, T0)).toBe(false);
        await store.openSession("s1", { owner: "a" }, LIMITS, T0);
        await store.noteSession("s1", { tool: "fetch", verdict: "allow" }, LIMITS, T0);
        await store.noteSession(
          "s1",
          { tool: "send", verdict: "deny", blocked: '{"tool":"send"}' },
          LIMITS,
          T0,
        );
        await store.noteSession("s1", { tool: "fetch", verdict: "allow" }, LIMITS, T0);
        const counters = await store.sessionCounters("s1", T0);
        expect(counters).toMatchObject({ owner: "a", blocked: ['{"tool":"send"}'] });
        expect(counters?.counts).toEqual({ allow: 2, deny: 1, "fetch\u0000allow": 2, "send\u0000deny": 1 });
        expect(await store.sessionCounters("nope", T0)).toBeUndefined();
      });

      it("refuses a session past the store's cap and past the owner's cap, with a reason", async () => {
        const store = await create();
        const limits = { ...LIMITS, maxSessions: 3, maxPerOwner: 2 };
        expect((await store.openSession("a1", { owner: "a" }, limits, T0)).ok).toBe(true);
        expect((await store.openSession("a2", { owner: "a" }, limits, T0)).ok).toBe(true);
        const owner = await store.openSession("a3", { owner: "a" }, limits, T0);
        expect(owner).toEqual({ ok: false, reason: "agent `a` holds 2 live sessions, its limit" });
        expect((await store.openSession("a1", { owner: "a" }, limits, T0)).ok).toBe(true);
        expect((await store.openSession("b1", { owner: "b" }, limits, T0)).ok).toBe(true);
        expect(await store.openSession("c1", { owner: "c" }, limits, T0)).toEqual({
          ok: false,
          reason: "the store holds 3 live sessions, its limit",
        });
        expect(await store.countSessions(T0)).toBe(3);
        expect(await store.countSessions(T0, "a")).toBe(2);
        await store.endSession("a1");
        expect(await store.readSession("a1", 0, limits, T0)).toBeUndefined();
        expect((await store.openSession("a3", { owner: "a" }, limits, T0)).ok).toBe(true);
      });

      it("forgets an idle session (and its owner) after its TTL; activity keeps it alive", async () => {
        const store = await create();
        // Real time: Redis expires keys by its own clock.
        const limits = { ...LIMITS, ttlMs: 400 };
        const start = Date.now();
        await store.openSession("idle", { owner: "a" }, limits, start);
        await store.openSession("busy", { owner: "a" }, limits, start);
        await store.appendSession("idle", ["x"], limits, start);
        await store.appendSession("busy", ["y"], limits, start);
        for (let i = 0; i < 4; i++) {
          await new Promise((resolve) => setTimeout(resolve, 200));
          expect(await store.readSession("busy", 0, limits, Date.now())).toMatchObject({ entries: ["y"] });
        }
        expect(await store.readSession("idle", 0, limits, Date.now())).toBeUndefined();
        expect(await store.appendSession("idle", ["z"], limits, Date.now())).toBeUndefined();
        expect(await store.countSessions(Date.now(), "a")).toBe(1);
        const again = await store.openSession("idle", { owner: "b" }, limits, Date.now());
        expect(again).toMatchObject({ ok: true, created: true, owner: "b" });
      });

      it("concurrent opens of one id: one creates it, every opener sees the same owner", async () => {
        const store = await create();
        const opens = await Promise.all(
          Array.from({ length: 8 }, (_, i) => store.openSession("race", { owner: `bot-${i}` }, LIMITS, T0)),
        );
        expect(opens.filter((o) => o.ok && o.created)).toHaveLength(1);
        const owners = new Set(opens.map((o) => (o.ok ? o.owner : "refused")));
        expect(owners.size).toBe(1);
      });
    });

    describe("records", () => {
      it("compare-and-set: version 0 creates, each write needs the current version, expired records are gone", async () => {
        const store = await create();
        expect(await store.getRecord("k", T0)).toBeUndefined();
        expect(await store.putRecord("k", "v1", 1, null, T0)).toBe(false);
        expect(await store.putRecord("k", "v1", 0, null, T0)).toBe(true);
        expect(await store.putRecord("k", "again", 0, null, T0)).toBe(false);
        expect(await store.getRecord("k", T0)).toEqual({ value: "v1", version: 1 });
        expect(await store.putRecord("k", "v2", 1, null, T0)).toBe(true);
        expect(await store.getRecord("k", T0)).toEqual({ value: "v2", version: 2 });
        const racing = await Promise.all([2, 2, 2].map((v, i) => store.putRecord("k", `r${i}`, v, null, T0)));
        expect(racing.filter(Boolean)).toHaveLength(1);
        await store.deleteRecord("k");
        expect(await store.getRecord("k", T0)).toBeUndefined();
        const soon = Date.now() + 300;
        expect(await store.putRecord("t", "short", 0, soon, Date.now())).toBe(true);
        expect((await store.getRecord("t", Date.now()))?.value).toBe("short");
        await new Promise((resolve) => setTimeout(resolve, 500));
        expect(await store.getRecord("t", Date.now())).toBeUndefined();
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

      it("a session written through one handle is read, owned and capped through the other", async () => {
        const first = await create();
        const second = await reopen!(first);
        open.push(second);
        await first.openSession("s", { owner: "a", meta: "m" }, LIMITS, T0);
        await first.appendSession("s", ["one"], LIMITS, T0);
        expect(await second.openSession("s", { owner: "b" }, LIMITS, T0)).toMatchObject({
          owner: "a",
          meta: "m",
        });
        expect(await second.appendSession("s", ["two"], LIMITS, T0)).toBe(2);
        expect((await first.readSession("s", 1, LIMITS, T0))?.entries).toEqual(["two"]);
        expect(await second.putRecord("plan", "x", 0, null, T0)).toBe(true);
        expect(await first.putRecord("plan", "y", 0, null, T0)).toBe(false);
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
