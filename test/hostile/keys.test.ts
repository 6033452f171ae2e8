import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startServe, tempDir, writePolicy } from "./procs.js";

/** Issue 17 item 10: key attributes are validated (depth, size) before anything is stored. */
describe("API key attributes", () => {
  const tmp = tempDir("tw-keys-");
  afterAll(() => tmp.remove());

  it("attrs nested 5,000 deep or over the size bound: 400, nothing stored, GET /v1/keys still works", async () => {
    const dataDir = join(tmp.dir, "data");
    const policy = writePolicy(tmp.dir, "version: 1\nname: keys\ndefault: deny\n");
    const serve = await startServe({ policy, dataDir });
    try {
      const before = (await serve.request("GET", "/v1/keys", { key: serve.adminKey })).body.keys.length;
      const deep = `${'{"a":'.repeat(5_000)}1${"}".repeat(5_000)}`;
      for (const attrs of [`{"team": ${deep}}`, `{"blob": ${JSON.stringify("x".repeat(100_000))}}`]) {
        const raw = `{"role": "agent", "name": "deep", "agent": "bot", "attrs": ${attrs}}`;
        const res = await serve.request("POST", "/v1/keys", { key: serve.adminKey, raw });
        expect(res.status).toBe(400);
        expect(res.body.error.message).toMatch(/attrs/);
      }
      const listed = await serve.request("GET", "/v1/keys", { key: serve.adminKey });
      expect(listed.status).toBe(200);
      expect(listed.body.keys.length).toBe(before);
      const fine = await serve.request("POST", "/v1/keys", {
        key: serve.adminKey,
        body: { role: "agent", name: "ok", agent: "bot", attrs: { team: "a", tier: { level: 2 } } },
      });
      expect(fine.status).toBe(201);
    } finally {
      await serve.stop();
    }
    const again = await startServe({ policy, dataDir });
    try {
      const listed = await again.request("GET", "/v1/keys", { key: again.adminKey });
      expect(listed.status).toBe(200);
      expect(listed.body.keys.map((k: { name: string }) => k.name)).toContain("ok");
    } finally {
      await again.stop();
    }
  }, 60_000);
});
