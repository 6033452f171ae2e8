import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ServeProcess, startServe, tempDir, writePolicy } from "../hostile/procs.js";

/**
 * Issue 17 items 5 and 6 through a real `serve`: the owner of a session is stored with it (so
 * a process that forgets its copy still refuses another agent), one agent's sessions are capped
 * without starving another's, and idle sessions expire, giving their place (and memory) back.
 * The process keeps 2 sessions in memory (TOOLWARDEN_SESSION_CACHE), so ownership must come from
 * the store.
 */
const POLICY = `version: 1
name: bounds
default: allow
tools:
  web_fetch: { produces: [untrusted] }
rules:
  - name: nothing-public-after-untrusted
    when: { tool: post_public, seen: [untrusted] }
    verdict: deny
`;

describe("serve: session ownership, caps and idle expiry", () => {
  const tmp = tempDir("tw-session-bounds-");
  let serve: ServeProcess;
  const keys: Record<string, string> = {};
  const decide = async (agent: string, session: string, tool = "post_public") =>
    serve.request("POST", "/v1/decide", { key: keys[agent], body: { call: { tool, session } } });

  beforeAll(async () => {
    serve = await startServe({
      policy: writePolicy(tmp.dir, POLICY),
      dataDir: join(tmp.dir, "data"),
      args: ["--max-sessions-per-agent", "3", "--session-ttl", "2"],
      env: { TOOLWARDEN_SESSION_CACHE: "2" },
    });
    for (const agent of ["bot", "eve"]) {
      const created = await serve.request("POST", "/v1/keys", {
        key: serve.adminKey,
        body: { role: "agent", name: agent, agent },
      });
      keys[agent] = created.body.key;
    }
  }, 60_000);

  afterAll(async () => {
    await serve?.stop(true);
    tmp.remove();
  });

  it("an agent past its cap is denied naming the cap; other agents are not starved; ownership outlives the cache", async () => {
    for (const session of ["b1", "b2", "b3"])
      expect((await decide("bot", session)).body.verdict).toBe("allow");
    const refused = (await decide("bot", "b4")).body;
    expect([refused.verdict, refused.rule]).toEqual(["deny", "session-limit"]);
    expect(refused.reason).toContain("agent `bot` holds 3 live sessions");
    expect((await decide("eve", "e1")).body.verdict).toBe("allow");
    expect((await decide("eve", "e2")).body.verdict).toBe("allow");
    // b1 left this process's cache long ago; its owner did not leave the store.
    const takeover = await decide("eve", "b1");
    expect(takeover.status).toBe(403);
    expect(takeover.body.error.message).toContain("belongs to another agent");
    expect((await serve.request("GET", "/v1/sessions/b1", { key: keys.eve })).status).toBe(403);
    expect((await serve.request("GET", "/v1/sessions/b1", { key: keys.bot })).body).toMatchObject({
      agent: "bot",
      calls: 1,
    });
  });

  it("idle sessions expire after the TTL: the agent's cap frees up, and the session is forgotten with its owner", async () => {
    expect((await decide("bot", "b1", "web_fetch")).body.verdict).toBe("allow");
    await serve.request("POST", "/v1/outputs", {
      key: keys.bot,
      body: { call: { tool: "web_fetch", session: "b1" }, output: "some untrusted page text here" },
    });
    expect((await decide("bot", "b1")).body.rule).toBe("nothing-public-after-untrusted");
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect((await decide("bot", "b4")).body.verdict).toBe("allow");
    expect((await serve.request("GET", "/v1/sessions/b2", { key: serve.adminKey })).status).toBe(404);
    // Expired with its owner: a new session under the same id starts clean and belongs to its opener.
    expect((await decide("eve", "b1")).body.verdict).toBe("allow");
  });
});
