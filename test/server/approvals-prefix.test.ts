import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { approvals } from "../../src/cli/approvals.js";
import { CliError } from "../../src/cli/util.js";
import { Warden } from "../../src/gateway/index.js";
import { SqliteStateStore } from "../../src/stores/sqlite/index.js";
import { FIXTURE_POLICY } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "tw-approvals-prefix-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function cli(args: string[]) {
  let stdout = "";
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string) => {
    stdout += chunk;
    return true;
  }) as typeof process.stdout.write;
  process.env.TOOLWARDEN_AUDIT_KEY = "p".repeat(32);
  try {
    return { code: await approvals.run(args), stdout, error: "" };
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    return { code: error.exitCode, stdout, error: error.message };
  } finally {
    process.stdout.write = write;
    delete process.env.TOOLWARDEN_AUDIT_KEY;
  }
}

describe("approval ids by a unique prefix", () => {
  it("approves by a prefix; an unknown or ambiguous prefix is an error naming the candidates", async () => {
    const db = join(dir, "s.db");
    const log = join(dir, "a.jsonl");
    const warden = Warden.fromFile(FIXTURE_POLICY, { store: new SqliteStateStore({ path: db }) });
    const a = await warden.decide({ tool: "refund", args: { amount: 300 }, session: "p-1" });
    const b = await warden.decide({ tool: "refund", args: { amount: 301 }, session: "p-2" });
    let shared = 0;
    while (a.approval![shared] === b.approval![shared]) shared++;
    const store = ["--store", `sqlite:${db}`, "--audit", log];

    const approved = await cli(["approve", a.approval!.slice(0, shared + 1), ...store]);
    expect(approved.error).toBe("");
    expect(approved.stdout).toContain(`approved ${a.approval}`);

    const none = await cli(["deny", "zzzz-no-such", ...store]);
    expect(none.code).toBe(1);
    expect(none.error).toContain("no approval");

    const pending = (await warden.store.getApproval(b.approval!))!;
    for (const id of ["cafe0001-x", "cafe0002-x"]) await warden.store.putApproval({ ...pending, id });
    const ambiguous = await cli(["deny", "cafe", ...store]);
    expect(ambiguous.code).toBe(1);
    expect(ambiguous.error).toContain("cafe0001-x");
    expect(ambiguous.error).toContain("cafe0002-x");
    expect((await warden.store.getApproval("cafe0001-x"))?.status).toBe("pending");
    expect((await cli(["deny", "cafe0002", ...store])).stdout).toContain("denied cafe0002-x");
    await warden.close();
  });
});
