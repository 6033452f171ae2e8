import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compilePolicyText } from "../../src/policy/index.js";
import { type ServeProcess, startServe, tempDir, writePolicy } from "./procs.js";

/**
 * Issue 17 item 11: a large policy upload is validated off the event loop (other requests are
 * answered meanwhile), and limits are indexed by tool as rules are. Order, not time, is asserted;
 * bench/hostile-load.ts measures the times.
 */
function bigPolicy(rules: number): string {
  const lines = Array.from(
    { length: rules },
    (_, i) => `  - { name: r${i}, when: { tool: "t${i}", args.amount: { gt: ${i} } }, verdict: deny }`,
  );
  return `version: 1\nname: big\ndefault: allow\nrules:\n${lines.join("\n")}\n`;
}

describe("a 10,000-rule upload does not stall other requests", () => {
  const tmp = tempDir("tw-large-");
  let serve: ServeProcess;
  beforeAll(async () => {
    serve = await startServe({
      policy: writePolicy(tmp.dir, "version: 1\nname: small\ndefault: deny\nallow: [search]\n"),
      dataDir: join(tmp.dir, "data"),
    });
  }, 60_000);
  afterAll(async () => {
    await serve?.stop(true);
    tmp.remove();
  });

  it.each(["/v1/policy/validate", "/v1/policy/versions"])(
    "%s: decisions and /health answer while it is checked",
    async (path) => {
      const order: string[] = [];
      const upload = serve
        .request("POST", path, { key: serve.adminKey, body: { source: bigPolicy(10_000) } })
        .then((res) => {
          order.push("upload");
          return res;
        });
      // Give the upload time to arrive and start being checked.
      await new Promise((r) => setTimeout(r, 300));
      const decide = serve
        .request("POST", "/v1/decide", { key: serve.adminKey, body: { call: { tool: "search" } } })
        .then((res) => {
          order.push("decide");
          return res;
        });
      const health = serve.request("GET", "/health").then((res) => {
        order.push("health");
        return res;
      });
      const [u, d, h] = await Promise.all([upload, decide, health]);
      expect(u.status).toBeLessThan(300);
      expect(u.body.error).toBeUndefined();
      expect([d.body.verdict, h.status]).toEqual(["allow", 200]);
      expect(order.at(-1)).toBe("upload");
    },
    120_000,
  );
});

describe("limits are indexed by tool", () => {
  it("limitsFor(tool) holds only the limits whose tool globs match, in file order", () => {
    const limits = Array.from(
      { length: 1000 },
      (_, i) => `  - { name: l${i}, when: { tool: "t${i}" }, max: 5 }`,
    );
    const policy = compilePolicyText(
      `version: 1\ndefault: allow\nlimits:\n${limits.join("\n")}\n  - { name: any-tool, max: 9 }\n  - { name: t-glob, when: { tool: "t1*" }, max: 9 }\n`,
    );
    expect(policy.limitsFor("t12").map((l) => l.name)).toEqual(["l12", "any-tool", "t-glob"]);
    expect(policy.limitsFor("other").map((l) => l.name)).toEqual(["any-tool"]);
    expect(policy.limitsFor("t12")).toBe(policy.limitsFor("t12"));
  });
});
