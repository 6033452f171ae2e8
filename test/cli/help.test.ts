import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cliPath } from "../setup/built-cli.js";

const ROOT = join(import.meta.dirname, "..", "..");

function help(args: string[]): string {
  const result = spawnSync(
    process.execPath,
    [cliPath(), ...args, "--help"],
    {
      encoding: "utf8",
      cwd: ROOT,
    },
  );
  return result.stdout;
}

/** The `--flags` a usage line names. */
function flagsOf(usage: string): string[] {
  return [...new Set([...usage.matchAll(/--[a-z][a-z-]*/g)].map((m) => m[0]))];
}

describe("every command's --help says what each flag takes", () => {
  it.each([
    ["validate"],
    ["check"],
    ["replay"],
    ["test"],
    ["explain"],
    ["diff"],
    ["bench"],
    ["eval"],
    ["suggest"],
    ["serve"],
    ["approvals"],
    ["mcp", "proxy"],
    ["mcp", "gateway"],
    ["mcp", "pins"],
    ["mcp", "scan"],
  ])("%s %s", (...command) => {
    const text = help(command.filter(Boolean));
    const [usage, ...rest] = text.split("\noptions:\n");
    expect(rest.length, text).toBe(1);
    const options = rest[0];
    for (const flag of flagsOf(usage))
      expect(options, `${command.join(" ")} ${flag}`).toMatch(new RegExp(`(^|[ ,])${flag}\\b`, "m"));
  });

  it("--store says what it accepts", () => {
    for (const command of [["approvals"], ["serve"], ["mcp", "proxy"]]) {
      const text = help(command);
      expect(text).toMatch(/--store URL.*sqlite:.*redis:\/\//);
    }
  });

  it("the top-level help and explain --help agree about diff", () => {
    const top = help([]);
    const explainLine = top.split("\n").find((line) => line.trim().startsWith("explain"));
    expect(explainLine).toContain("explain diff A B");
    expect(help(["explain"])).toContain("explain diff A B");
    expect(help(["diff"])).toContain("toolwarden diff A B");
  });
});

describe("messages count properly and bench is not silent", () => {
  const run = (args: string[]) =>
    spawnSync(process.execPath, [cliPath(), ...args], {
      encoding: "utf8",
      cwd: ROOT,
    });

  it("says `1 rule`, `1 limit`, `1 record`, not `1 rules`", () => {
    const dir = mkdtempSync(join(tmpdir(), "tw-plural-"));
    const policy = join(dir, "p.yaml");
    writeFileSync(
      policy,
      "version: 1\ntools: { t: {} }\nrules: [{ name: r, verdict: deny }]\nlimits: [{ name: l, max: 1 }]\n",
    );
    const validated = run(["validate", policy]).stdout;
    expect(validated).toContain("(1 tool, 1 rule, 1 limit)");
    const log = join(dir, "a.jsonl");
    const env = { ...process.env, TOOLWARDEN_AUDIT_KEY: "k".repeat(32) };
    spawnSync(
      process.execPath,
      [cliPath(), "check", "-p", policy, "--audit", log, "-"],
      {
        input: '{"tool":"t"}',
        env,
        cwd: ROOT,
      },
    );
    const verified = spawnSync(
      process.execPath,
      [cliPath(), "audit", "verify", log],
      {
        encoding: "utf8",
        env,
        cwd: ROOT,
      },
    );
    expect(verified.stdout).toMatch(/^ok: 1 record in 1 file /);
  });

  it("bench shows each scenario on stderr as it is measured", () => {
    const bench = run(["bench", "--only", "core"]);
    expect(bench.status).toBe(0);
    expect(bench.stderr).toMatch(/bench: core \(set 1 of 1\)/);
    expect(bench.stderr).toMatch(/bench: {3}raw function call.*\(1 measured\)/);
  }, 300_000);

  it("bench --scenario runs one scenario by name, with the raw calls for its ratio", () => {
    const bench = run(["bench", "--scenario", "FLOW SCAN"]);
    expect(bench.status, bench.stderr).toBe(0);
    const rows = bench.stdout.split("\n").filter((line) => / (ns|µs|ms) /.test(line));
    expect(rows.map((line) => line.split(/ {2,}/)[0])).toEqual([
      "raw function call (sync)",
      "raw function call (async, awaited)",
      "flow scan: 4 KB argument vs 1 MB of labelled output",
    ]);
    const unknown = run(["bench", "--only", "taint", "--scenario", "no such scenario"]);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain("matched no scenario in set `taint`");
    expect(unknown.stderr).toContain("  flow scan: 4 KB argument vs 1 MB of labelled output");
  }, 300_000);
});
