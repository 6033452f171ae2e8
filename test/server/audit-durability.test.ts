import { spawnSync } from "node:child_process";
import { open, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./helpers.js";
import { cliPath } from "../setup/built-cli.js";

/**
 * `serve --audit-durability`: with `fsync` a decision is answered after its JSONL record is
 * fdatasync'ed; with `write` once it is written to the OS, with no disk flush. Counted on the real
 * file handles the sink uses (the SQLite copy syncs through SQLite, not through these).
 */
async function datasyncsDuring(run: () => Promise<void>): Promise<number> {
  const probe = await open(join(tmpdir(), `tw-probe-${process.pid}`), "w");
  const proto = Object.getPrototypeOf(probe) as { datasync: () => Promise<void> };
  await probe.close();
  const original = proto.datasync;
  let count = 0;
  proto.datasync = function (this: unknown) {
    count++;
    return original.call(this);
  };
  try {
    await run();
  } finally {
    proto.datasync = original;
  }
  return count;
}

describe("serve --audit-durability", () => {
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  for (const [durability, synced] of [
    ["fsync", true],
    ["write", false],
  ] as const) {
    it(`${durability}: every answered decision is in audit.jsonl, ${synced ? "after" : "without"} fdatasync`, async () => {
      t = await startTestServer({ auditDurability: durability });
      const key = await t.key("agent", "bot-1");
      const server = t;
      const syncs = await datasyncsDuring(async () => {
        for (let i = 0; i < 5; i++) {
          const res = await server.request("POST", "/v1/decide", {
            key,
            body: { call: { tool: "delete_user", args: { id: i }, session: `dur-${i}` } },
          });
          expect(res.status).toBe(200);
          // Answered means written: the record is in the file before any flush.
          expect(await readFile(server.server.paths.auditLog, "utf8")).toContain(`"session":"dur-${i}"`);
        }
      });
      if (synced) expect(syncs).toBeGreaterThanOrEqual(5);
      else expect(syncs).toBe(0);
    });
  }

  it("refuses another value with a usage error", () => {
    const result = spawnSync(
      process.execPath,
      [
        cliPath(),
        "serve",
        "-p",
        "x.yaml",
        "--audit-durability",
        "none",
      ],
      { encoding: "utf8" },
    );
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("--audit-durability must be `fsync` or `write`, not `none`");
  });
});
