import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startServe, tempDir, writePolicy } from "./procs.js";

/** Issue 17 item 4: every file `serve` creates in its data directory is 0600 (directories 0700). */
const POLICY = "version: 1\nname: modes\ndefault: deny\nallow: [search]\nask: [refund]\n";

function walk(dir: string): Array<[string, number]> {
  const out: Array<[string, number]> = [[dir, statSync(dir).mode & 0o777]];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...walk(path));
    else out.push([path, statSync(path).mode & 0o777]);
  }
  return out;
}

describe("data directory permissions", () => {
  const tmp = tempDir("tw-modes-");
  afterAll(() => tmp.remove());

  it("audit.jsonl, audit.db (and its WAL), state.db, spools and policies are owner-only", async () => {
    const dataDir = join(tmp.dir, "data");
    const serve = await startServe({ policy: writePolicy(tmp.dir, POLICY), dataDir });
    try {
      for (const tool of ["search", "refund", "other"]) {
        const res = await serve.request("POST", "/v1/decide", {
          key: serve.adminKey,
          body: { call: { tool, session: "s", args: { n: 1 } } },
        });
        expect(res.status).toBe(200);
      }
      const uploaded = await serve.request("POST", "/v1/policy/versions", {
        key: serve.adminKey,
        body: { source: `${POLICY}# v2\n` },
      });
      expect(uploaded.status).toBe(201);
      const names = walk(dataDir).map(([path]) => path.slice(dataDir.length));
      expect(names).toEqual(expect.arrayContaining(["/audit.jsonl", "/audit.db", "/state.db"]));
      const open = walk(dataDir).filter(([, mode]) => (mode & 0o077) !== 0);
      expect(open.map(([path, mode]) => `${path.slice(dataDir.length) || "/"} ${mode.toString(8)}`)).toEqual(
        [],
      );
    } finally {
      await serve.stop();
    }
    const after = walk(dataDir).filter(([, mode]) => (mode & 0o077) !== 0);
    expect(after.map(([path, mode]) => `${path.slice(dataDir.length) || "/"} ${mode.toString(8)}`)).toEqual(
      [],
    );
  }, 60_000);
});
