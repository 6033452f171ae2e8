import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUDIT_KEY, CLI, INTEROP, readJsonl, stdioClient, tempDir, until } from "./helpers.js";
import type { AnyClient } from "./helpers.js";
import { INTEROP_POLICY, interopChecks, MATRIX } from "./interop-checks.js";

describe.each(MATRIX)("through the proxy: $client client, $server server (legacy: $legacy)", (cell) => {
  const dir = tempDir();
  const log = join(dir, "fixture.log");
  let client: AnyClient;
  beforeAll(async () => {
    writeFileSync(join(dir, "policy.yaml"), INTEROP_POLICY);
    client = await stdioClient(
      cell.client,
      [
        ...CLI,
        "mcp",
        "proxy",
        "-p",
        join(dir, "policy.yaml"),
        "--server-id",
        "interop",
        "--audit",
        join(dir, "audit.jsonl"),
        "--pins",
        join(dir, "pins.jsonl"),
        "--",
        process.execPath,
        ...INTEROP,
      ],
      { SDK: cell.server, LEGACY: cell.legacy, FIXTURE_LOG: log, TOOLWARDEN_AUDIT_KEY: AUDIT_KEY },
      dir,
    );
  });
  afterAll(() => client?.close());

  interopChecks(() => ({ client: () => client, tool: (name) => name, log }), cell.era, cell.elicits);

  it("audits the decisions, resource reads included", async () => {
    await until(
      () =>
        readJsonl(join(dir, "audit.jsonl")).some((r) => r.tool === "resources/read" && r.verdict === "deny"),
      "the audit records",
    );
    const rows = readJsonl(join(dir, "audit.jsonl"))
      .filter((r) => r.kind === "decision")
      .map((r) => [r.tool, r.server, r.verdict]);
    expect(rows).toEqual(
      expect.arrayContaining([
        ["echo", "interop", "allow"],
        ["huge", "interop", "deny"],
        ["resources/read", "interop", "allow"],
        ["resources/read", "interop", "deny"],
        ["prompts/get", "interop", "allow"],
      ]),
    );
  });
});
