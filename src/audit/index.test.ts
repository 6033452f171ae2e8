import { describe, expect, it } from "vitest";
import * as audit from "./index.js";

describe("audit public surface", () => {
  it("exports exactly these names", () => {
    expect(Object.keys(audit).sort()).toEqual([
      "AuditKeyError",
      "AuditSinkError",
      "FanoutAuditSink",
      "JsonlAuditSink",
      "ZERO_HASH",
      "auditArgs",
      "auditFiles",
      "canonicalJson",
      "followAudit",
      "hashValue",
      "queryAudit",
      "resolveAuditKey",
      "shareReceipt",
      "tailAudit",
      "verifyAuditLog",
      "verifyRows",
    ]);
  });

  it("loads no database driver", async () => {
    const { execFileSync } = await import("node:child_process");
    const out = execFileSync(
      process.execPath,
      [
        "--import",
        "tsx",
        "--input-type=module",
        "-e",
        `import { createRequire } from "node:module";
         await import("./src/audit/index.ts");
         // pg and better-sqlite3 are CommonJS: loading them through ESM still fills the require cache.
         const loaded = Object.keys(createRequire(import.meta.url).cache);
         console.log(JSON.stringify(loaded.filter((p) => /better-sqlite3|node_modules\\/pg\\//.test(p))));`,
      ],
      { encoding: "utf8", cwd: process.cwd() },
    );
    expect(JSON.parse(out.trim())).toEqual([]);
  });
});
