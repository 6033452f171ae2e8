import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  type PrivateRedis,
  type ServeProcess,
  startRedis,
  startServe,
  tempDir,
  until,
  writePolicy,
} from "../hostile/procs.js";

/**
 * Issue 16: policy versions live in the state store like the keys. Two real `serve` processes on
 * one store: a version uploaded and activated through A becomes the active policy on B within the
 * sync interval (a second), a rollback made on B is followed by A, and a restart keeps the version
 * active in the store instead of going back to the policy file. The same for Redis (replicas on
 * many hosts) and for one SQLite file (replicas on one host).
 */
const POLICY = `version: 1
name: replicas
default: allow
`;
const STRICT = `version: 1
name: replicas-strict
default: allow
deny: [search]
`;

async function verdictOf(serve: ServeProcess, key: string): Promise<string> {
  const res = await serve.request("POST", "/v1/decide", { key, body: { call: { tool: "search" } } });
  if (res.status !== 200) throw new Error(`decide: ${res.status} ${res.text}`);
  return res.body.verdict;
}

/** Polls until `serve` decides `search` as `verdict` (the other replica follows within about a second). */
function follows(serve: ServeProcess, key: string, verdict: string): Promise<true> {
  return until(`${serve.url} to decide ${verdict}`, async () =>
    (await verdictOf(serve, key)) === verdict ? true : undefined,
  );
}

/** `short`: only activate on A, B follows, B restarted keeps it (the rest is the same code for every store). */
function replicas(
  name: string,
  storeOf: (dir: string) => Promise<{ url: string; stop(): Promise<void> }>,
  short = false,
) {
  describe(`policy versions shared by two serve processes on one ${name} store`, () => {
    const tmp = tempDir(`tw-policy-versions-${name}-`);
    const running: ServeProcess[] = [];
    let stopStore: (() => Promise<void>) | undefined;

    afterAll(async () => {
      for (const serve of running) await serve.stop(true);
      await stopStore?.();
      tmp.remove();
    });

    const title = short
      ? "activate on A is active on B and stays active when B restarts"
      : "activate on A is active on B, rollback on B is followed by A, a restart keeps the active version";
    it(title, async () => {
      const store = await storeOf(tmp.dir);
      stopStore = () => store.stop();
      const policy = writePolicy(tmp.dir, POLICY);
      const start = async (replica: string) => {
        const serve = await startServe({
          policy,
          dataDir: join(tmp.dir, replica),
          args: ["--store", store.url, "--store-timeout", "2000"],
        });
        running.push(serve);
        return serve;
      };
      const a = await start("a");
      let b = await start("b");
      const made = await a.request("POST", "/v1/keys", {
        key: a.adminKey,
        body: { role: "agent", name: "bot", agent: "bot" },
      });
      const agent = made.body.key as string;
      expect([await verdictOf(a, agent), await verdictOf(b, agent)]).toEqual(["allow", "allow"]);
      const original = (await b.request("GET", "/v1/policy", { key: b.adminKey })).body.hash;

      const uploaded = await a.request("POST", "/v1/policy/versions", {
        key: a.adminKey,
        body: { source: STRICT, activate: true },
      });
      expect(uploaded.status).toBe(201);
      const strict = uploaded.body.version.hash as string;
      expect(await verdictOf(a, agent)).toBe("deny");
      await follows(b, agent, "deny");
      const onB = await b.request("GET", "/v1/policy/versions", { key: b.adminKey });
      expect(onB.body.versions.map((v: { hash: string; active: boolean }) => [v.hash, v.active])).toEqual([
        [strict, true],
        [original, false],
      ]);
      if (short) {
        await b.stop(true);
        b = await start("b");
        expect(await verdictOf(b, agent)).toBe("deny");
        return;
      }

      const rolled = await b.request("POST", "/v1/policy/rollback", { key: b.adminKey });
      expect(rolled.body).toMatchObject({ action: "rollback", from: strict, to: original });
      expect(await verdictOf(b, agent)).toBe("allow");
      await follows(a, agent, "allow");

      // Activated again through B (a version B never received itself), then B killed and
      // restarted: it starts with the version active in the store, not with its policy file.
      const again = await b.request("POST", `/v1/policy/versions/${strict}/activate`, { key: b.adminKey });
      expect(again.body).toMatchObject({ action: "activate", from: original, to: strict });
      await follows(a, agent, "deny");
      await b.stop(true);
      running.splice(running.indexOf(b), 1);
      b = await start("b");
      expect(await verdictOf(b, agent)).toBe("deny");

      // A follows a change it did not make in its policy audit: a `sync` record naming both hashes.
      await b.request("POST", "/v1/policy/rollback", { key: b.adminKey });
      await follows(a, agent, "allow");
      const audit = await a.request("GET", "/v1/audit?kind=policy&limit=20", { key: a.adminKey });
      const actions = audit.body.records.map((r: { data: { action: string; from: string; to: string } }) => [
        r.data.action,
        r.data.from,
        r.data.to,
      ]);
      expect(actions).toContainEqual(["sync", strict, original]);
    }, 120_000);
  });
}

replicas("Redis", async () => {
  const redis: PrivateRedis = await startRedis();
  return { url: `${redis.url}?prefix=tw-policy-versions:`, stop: () => redis.kill() };
});

replicas(
  "SQLite",
  async (dir) => ({ url: `sqlite:${join(dir, "shared-state.db")}`, stop: async () => {} }),
  true,
);
