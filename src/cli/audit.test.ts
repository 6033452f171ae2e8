import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { auditFiles } from "../audit/files.js";
import { decisionEvent, TEST_KEY, tempDir } from "../audit/fixtures/events.js";
import { JsonlAuditSink } from "../audit/jsonl-sink.js";
import { run } from "./audit.js";

let dir: string;
let cleanup: () => Promise<void>;
let log: string;
let keyFile: string;
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir("tw-cli-audit-"));
  log = join(dir, "audit.jsonl");
  keyFile = join(dir, "key");
  await writeFile(keyFile, `${TEST_KEY.toString("utf8")}\n`);
  const sink = await JsonlAuditSink.open({ path: log, key: TEST_KEY, maxBytes: 2500 });
  for (let i = 1; i <= 8; i++) await sink.append(decisionEvent(i));
  await sink.append(decisionEvent(9, { tool: "evil\u001b[2J\u001b]0;pwned\u0007" }));
  await sink.close();
});
afterEach(() => cleanup());

async function cli(argv: string[], env: Record<string, string | undefined> = {}, signal?: AbortSignal) {
  let stdout = "";
  let stderr = "";
  const code = await run(argv, {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    env,
    signal,
  });
  return { code, stdout, stderr };
}

describe("toolwarden audit verify", () => {
  it("verifies a rotated log given by its active file", async () => {
    const { code, stdout, stderr } = await cli(["verify", log, "--key-file", keyFile]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toMatch(
      /^ok: 9 records in [2-9] files \(hash chain and hmac, 9 checkpoints\); last seq 9, hash [0-9a-f]{64}\n$/,
    );
  });

  it("takes the key from the environment", async () => {
    expect((await cli(["verify", log], { TOOLWARDEN_AUDIT_KEY: TEST_KEY.toString("utf8") })).code).toBe(0);
    expect((await cli(["verify", log], { TOOLWARDEN_AUDIT_KEY_FILE: keyFile })).code).toBe(0);
  });

  it("exits 1 with one line naming the first bad record", async () => {
    for (const file of await auditFiles(log)) {
      await writeFile(
        file,
        (await readFile(file, "utf8")).replace('"tool_8","verdict":"deny"', '"tool_8","verdict":"allow"'),
      );
    }
    const { code, stdout, stderr } = await cli(["verify", log, "--key-file", keyFile]);
    expect(code).toBe(1);
    expect(stdout).toBe("");
    expect(stderr).toMatch(
      /^\S+audit(\.\d+)?\.jsonl:\d+: record 8: hash: record 8 does not match its hash \(edited\) \(7 records verified before it\)\n$/,
    );
  });

  it("exits 1 with a wrong key", async () => {
    await writeFile(keyFile, "a-completely-different-key-0123");
    const { code, stderr } = await cli(["verify", log, "--key-file", keyFile]);
    expect(code).toBe(1);
    expect(stderr).toContain("hmac");
  });

  it("needs a key, or --unsigned to check the chain only", async () => {
    const missing = await cli(["verify", log]);
    expect(missing.code).toBe(2);
    expect(missing.stderr.split("\n")[0]).toMatch(
      /no audit key: pass --audit-key-file FILE \(or --key-file\)/,
    );
    const unsigned = await cli(["verify", log, "--unsigned"]);
    expect(unsigned.code).toBe(0);
    expect(unsigned.stdout).toContain("hash chain only, hmac not checked");
  });

  it.each([
    [["verify"], /no LOG given/],
    [["verify", "x", "--bogus"], /Unknown option '--bogus'/],
    [["frobnicate"], /unknown audit command `frobnicate`/],
    [["verify", "x", "--key-file", "/nonexistent/key"], /cannot read audit key file/],
  ])("exits 2 on usage errors: %j", async (argv, message) => {
    const { code, stderr } = await cli(argv);
    expect(code).toBe(2);
    expect(stderr.split("\n")[0]).toMatch(message);
    expect(stderr.trimEnd().split("\n")).toHaveLength(1);
  });
});

describe("toolwarden audit tail", () => {
  it("prints the last N records, with terminal escapes removed", async () => {
    const { code, stdout } = await cli(["tail", log, "-n", "2"]);
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      /^#8 2025-01-01T00:00:08.000Z deny {2}tool_8 agent=agent-0 session=s2 rule=no-secrets findings=secret.aws_key$/,
    );
    expect(lines[1]).toContain("evil?[2J?]0;pwned?");
    expect(stdout).not.toContain("\u001b");
  });

  it("prints JSON lines with --json", async () => {
    const { stdout } = await cli(["tail", log, "-n", "3", "--json"]);
    expect(
      stdout
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l).seq),
    ).toEqual([7, 8, 9]);
  });

  it("follows new records until stopped, printing each once", async () => {
    const controller = new AbortController();
    let out = "";
    const done = run(["tail", log, "-n", "1", "--follow", "--json"], {
      stdout: {
        write: (t: string) => {
          out += t;
          if (t.includes("tool_10")) controller.abort();
        },
      },
      stderr: { write: () => {} },
      env: {},
      signal: controller.signal,
    });
    const sink = await JsonlAuditSink.open({ path: log, key: TEST_KEY, maxBytes: 2500 });
    await sink.append(decisionEvent(10));
    await sink.close();
    expect(await done).toBe(0);
    const seqs = out
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l).seq);
    expect(seqs.at(-1)).toBe(10);
    expect(new Set(seqs).size).toBe(seqs.length);
  });

  it("rejects a bad count", async () => {
    expect((await cli(["tail", log, "-n", "ten"])).code).toBe(2);
  });
});

describe("toolwarden audit query", () => {
  it.each([
    [
      ["--verdict", "deny"],
      [4, 8],
    ],
    [
      ["--verdict", "deny,allow", "--session", "s1"],
      [1, 4, 7],
    ],
    [
      ["--agent", "agent-1", "--tool", "tool_?"],
      [1, 3, 5, 7],
    ],
    [
      ["--since", "2025-01-01T00:00:03Z", "--until", "2025-01-01T00:00:05Z"],
      [3, 4],
    ],
  ])("filters %j", async (flags, seqs) => {
    const { code, stdout } = await cli(["query", log, ...flags, "--json"]);
    expect(code).toBe(0);
    expect(
      stdout
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l).seq),
    ).toEqual(seqs);
  });

  it.each([
    [["--verdict", "maybe"], /`maybe` is not a verdict/],
    [["--since", "last tuesday"], /--since `last tuesday` is not an ISO time/],
  ])("exits 2 on bad filters %j", async (flags, message) => {
    const { code, stderr } = await cli(["query", log, ...flags]);
    expect(code).toBe(2);
    expect(stderr.split("\n")[0]).toMatch(message);
  });

  it("exits 1 when a log cannot be read", async () => {
    const { code, stderr } = await cli(["query", join(dir, "missing.jsonl")]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^toolwarden audit: ENOENT/);
  });
});

describe("toolwarden audit receipt", () => {
  it("prints a Markdown receipt for one record", async () => {
    const { code, stdout } = await cli(["receipt", log, "--seq", "4"]);
    expect(code).toBe(0);
    expect(stdout).toContain("### toolwarden: call denied");
    expect(stdout).toContain("| Rule | `no-secrets` |");
    expect(stdout).not.toContain('"n":4');
  });

  it("names the checkpoint that signs a record inside a batch, and refuses when it is missing", async () => {
    const batched = join(dir, "batched.jsonl");
    const sink = await JsonlAuditSink.open({ path: batched, key: TEST_KEY });
    await Promise.all([1, 2, 3].map((i) => sink.append(decisionEvent(i))));
    await sink.close();
    const [, , third] = (await readFile(batched, "utf8")).split("\n").map((l) => l && JSON.parse(l));
    const { code, stdout } = await cli(["receipt", batched, "--seq", "2"]);
    expect(code).toBe(0);
    expect(stdout).toContain(`; signed by the checkpoint at seq \`3\`, hash \`${third.hash}\` |`);
    expect((await cli(["receipt", batched, "--seq", "3"])).stdout).not.toContain("signed by");
    await writeFile(batched, (await readFile(batched, "utf8")).split("\n").slice(0, 2).join("\n") + "\n");
    expect(await cli(["receipt", batched, "--seq", "2"])).toMatchObject({
      code: 1,
      stderr: `toolwarden audit: record 2 is not signed yet: its checkpoint, record 3, is not in \`${batched}\`\n`,
    });
  });

  it("exits 1 for an unknown seq and 2 without --seq", async () => {
    expect((await cli(["receipt", log, "--seq", "99"])).stderr).toBe(
      `toolwarden audit: no record with seq 99 in \`${log}\`\n`,
    );
    expect((await cli(["receipt", log, "--seq", "99"])).code).toBe(1);
    expect((await cli(["receipt", log])).code).toBe(2);
  });
});
