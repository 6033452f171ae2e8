import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cli, EXAMPLE, tempFiles } from "./run-cli.js";

const { dir, file } = tempFiles("tw-exit-");

const POLICY = file(
  "p.yaml",
  "version: 1\ndefault: deny\nallow: [read]\nask: [refund]\ntests:\n  - call: { tool: read }\n    expect: allow\n",
);

describe("exit codes say what happened", () => {
  it("check --exit-code: 0 allow, 1 deny, 3 ask; without it 0", () => {
    expect(cli(["check", "-p", POLICY, "--exit-code", "-"], '{"tool":"read"}').code).toBe(0);
    const denied = cli(["check", "-p", POLICY, "--exit-code", "-"], '{"tool":"drop"}');
    expect(denied.code).toBe(1);
    expect(JSON.parse(denied.stdout).verdict).toBe("deny");
    expect(cli(["check", "-p", POLICY, "--exit-code", "-"], '{"tool":"refund"}').code).toBe(3);
    expect(cli(["check", "-p", POLICY, "-"], '{"tool":"drop"}').code).toBe(0);
    const jsonl = file("calls.jsonl", '{"tool":"read"}\n{"tool":"refund"}\n');
    expect(cli(["check", "-p", POLICY, "--exit-code", "--jsonl", jsonl]).code).toBe(3);
    expect(cli(["check", "--help"]).stdout).toContain("--exit-code");
  });

  it("diff: each change once, exit 1 when the policies differ, 0 when not", () => {
    const other = file(
      "q.yaml",
      "version: 1\ndefault: deny\nallow: [read]\ndeny: [refund]\ntests:\n  - call: { tool: read }\n    expect: allow\n  - call: { tool: refund }\n    expect: deny\n",
    );
    const same = cli(["diff", POLICY, POLICY]);
    expect(same.code).toBe(0);
    const changed = cli(["diff", POLICY, other]);
    expect(changed.code).toBe(1);
    const lines = changed.stdout.trim().split("\n");
    expect(new Set(lines).size).toBe(lines.length);
    expect(lines.filter((line) => line.startsWith("! refund"))).toHaveLength(1);
    const both = file(
      "r.yaml",
      "version: 1\ndefault: deny\nallow: [read, refund]\ntests:\n  - call: { tool: refund }\n    expect: allow\n",
    );
    const twice = cli(["diff", other, both]).stdout.trim().split("\n");
    expect(twice.filter((line) => line.startsWith("! refund"))).toHaveLength(1);
  });

  it("eval on a directory without cases and bench --only of an unknown set are errors", () => {
    const empty = join(dir, "empty");
    mkdirSync(empty, { recursive: true });
    const evalled = cli(["eval", empty]);
    expect(evalled.code).toBe(2);
    expect(evalled.stderr).toContain("policy.yaml");
    const traces = cli(["eval", "--traces", empty]);
    expect(traces.code).toBe(2);
    const bench = cli(["bench", "--only", "nope"]);
    expect(bench.code).toBe(2);
    expect(bench.stderr).toContain("core");
    expect(bench.stdout).toBe("");
  });

  it("validate still exits 0 on the example", () => {
    expect(cli(["validate", EXAMPLE]).code).toBe(0);
  });
});
