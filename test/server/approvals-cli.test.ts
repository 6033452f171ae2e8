import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { approvals } from "../../src/cli/approvals.js";
import { CliError } from "../../src/cli/util.js";
import { Warden } from "../../src/gateway/index.js";
import { SqliteStateStore } from "../../src/stores/sqlite/index.js";
import { FIXTURE_POLICY, startTestServer, type TestServer } from "./helpers.js";
import { cliPath } from "../setup/built-cli.js";

const run = promisify(execFile);

/** Runs the command in this process (spawning tsx costs seconds a run); errors come back as main prints them. */
async function cli(args: string[], env: Record<string, string> = {}) {
  const saved = Object.fromEntries(Object.keys(env).map((name) => [name, process.env[name]]));
  Object.assign(process.env, env);
  let stdout = "";
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string) => {
    stdout += chunk;
    return true;
  }) as typeof process.stdout.write;
  try {
    const code = await approvals.run(args);
    return { code, stdout, stderr: "" };
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    return { code: error.exitCode, stdout, stderr: `toolwarden approvals: ${error.message}\n` };
  } finally {
    process.stdout.write = write;
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

describe("toolwarden approvals against a store URL", () => {
  let dir: string;
  let db: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "tw-approvals-cli-"));
    db = join(dir, "state.db");
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("lists a pending call and approves it; the gateway lets that call through once", async () => {
    const warden = Warden.fromFile(FIXTURE_POLICY, { store: new SqliteStateStore({ path: db }) });
    const call = { tool: "refund", args: { amount: 400 }, agent: { id: "bot-9" }, session: "cli-1" };
    const asked = await warden.decide(call);
    expect(asked.verdict).toBe("ask");

    const list = await cli(["list", "--store", `sqlite:${db}`]);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(asked.approval);
    expect(list.stdout).toMatch(/refund\s+bot-9\s+cli-1\s+big-refunds/);

    const log = join(dir, "audit.jsonl");
    const approved = await cli(
      [
        "approve",
        asked.approval!,
        "--store",
        `sqlite:${db}`,
        "--by",
        "dana",
        "--reason",
        "ok",
        "--audit",
        log,
      ],
      {
        TOOLWARDEN_AUDIT_KEY: "k".repeat(32),
      },
    );
    expect(approved.code).toBe(0);
    expect(approved.stdout).toBe(`approved ${asked.approval} (refund for bot-9) by dana\n`);
    const record = JSON.parse((await import("node:fs")).readFileSync(log, "utf8").trim());
    expect(record).toMatchObject({
      kind: "approval",
      approval: { id: asked.approval, status: "approved", by: "dana", reason: "ok" },
    });

    expect((await warden.decide(call)).verdict).toBe("allow");
    expect((await warden.decide(call)).verdict).toBe("ask");
    await warden.close();

    const again = await cli(["deny", asked.approval!, "--store", `sqlite:${db}`, "--audit", log], {
      TOOLWARDEN_AUDIT_KEY: "k".repeat(32),
    });
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("is used, not pending");
  });

  it("explains what is missing, as one line without a stack trace", async () => {
    const none = await cli(["list"], { TOOLWARDEN_STORE: "", TOOLWARDEN_SERVER: "" });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("pass --store URL");
    const spawned = await run(process.execPath, [
      cliPath(),
      "approvals",
      "approve",
      "--store",
      `sqlite:${db}`,
    ]).catch((error) => error);
    expect(spawned.code).toBe(2);
    expect(spawned.stderr).toMatch(
      /^toolwarden approvals: `approvals approve` needs the approval id\nusage: /,
    );
    expect(spawned.stderr).not.toMatch(/\n\s+at /);
  });
});

describe("toolwarden approvals against a server URL", () => {
  let t: TestServer;
  let keyFile: string;

  beforeAll(async () => {
    t = await startTestServer();
    keyFile = join(t.dir, "approver.key");
    writeFileSync(keyFile, await t.key("approver", undefined, "erin"));
  });
  afterAll(async () => {
    await t?.close();
  });

  it("denies with the key's identity; an agent key is refused", async () => {
    const agent = await t.key("agent", "bot-3");
    const asked = await t.request("POST", "/v1/decide", {
      key: agent,
      body: { call: { tool: "send_email", args: { to: "x@y.example" } } },
    });
    const list = await cli(["list", "--server", t.url, "--key-file", keyFile, "--json"]);
    expect(JSON.parse(list.stdout).map((a: any) => a.id)).toEqual([asked.body.approval]);

    const denied = await cli([
      "deny",
      asked.body.approval,
      "--server",
      t.url,
      "--key-file",
      keyFile,
      "--reason",
      "no mail",
    ]);
    expect(denied.stdout).toBe(`denied ${asked.body.approval} (send_email for bot-3) by erin\n`);
    const stored = await t.server.warden.store.getApproval(asked.body.approval);
    expect(stored).toMatchObject({ status: "denied", decidedBy: "erin", decisionReason: "no mail" });

    const refused = await cli(["list", "--server", t.url], { TOOLWARDEN_API_KEY: agent });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("needs the role approver or admin");
  });
});
