import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { compilePolicyFileAsync } from "../policy/index.js";
import { policyCoverage, runPolicyTests } from "../policy-tools/index.js";

const ROOT = join(import.meta.dirname, "../..");
const CLI = [
  "--import",
  pathToFileURL(join(ROOT, "node_modules/tsx/dist/loader.mjs")).href,
  join(ROOT, "src/cli/main.ts"),
];

const POLICY = `version: 1
default: deny
allow: [search, fetch]
tools:
  fetch:
    args:
      url: { url: { hosts: [docs.example.com] } }
  query:
    args:
      sql: { sql: { allow: [select] } }
rules:
  - name: big-refunds
    when: { tool: refund, args.amount: { gt: 100 } }
    verdict: ask
  - name: never-fires
    when: { tool: refund, args.amount: { lt: 0 } }
    verdict: deny
limits:
  - { name: fetch-rate, when: { tool: fetch }, rate: 30/minute, per: session }
  - { name: query-cap, when: { tool: query }, max: 5, per: session }
tests:
  - call: { tool: fetch, args: { url: "https://docs.example.com/a" } }
    expect: allow
  - call: { tool: refund, args: { amount: 250 } }
    expect: ask
`;

function write(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), "tw-cov-")), "policy.yaml");
  writeFileSync(file, text);
  return file;
}

describe("test --coverage", () => {
  it("names each rule, constraint and limit no test exercised, at its file:line", async () => {
    const file = write(POLICY);
    const policy = await compilePolicyFileAsync(file);
    const [coverage] = policyCoverage(policy, await runPolicyTests(policy));
    expect(coverage.file).toBe(file);
    const missed = coverage.items
      .filter((i) => !i.covered)
      .map((i) => `${i.line}:${i.col} ${i.kind} ${i.name}`);
    expect(missed).toEqual([
      "3:9 rule allow:search",
      "10:14 constraint tools.query.args.sql (sql)",
      "15:5 rule never-fires",
      "20:5 limit query-cap",
    ]);
    expect(coverage.covered).toBe(4);
    expect(coverage.total).toBe(8);
  });

  it("exits non-zero under --min-coverage, zero at or above it", () => {
    const file = write(POLICY);
    const run = (...flags: string[]) =>
      spawnSync(process.execPath, [...CLI, "test", file, ...flags], { encoding: "utf8" });
    const listed = run("--coverage");
    expect(listed.status).toBe(0);
    expect(listed.stdout).toMatch(/coverage .*policy\.yaml: 4\/8 \(50\.0%\)/);
    expect(listed.stdout).toMatch(/not exercised: .*policy\.yaml:15:5 rule never-fires/);
    expect(run("--min-coverage", "50").status).toBe(0);
    const short = run("--min-coverage", "75");
    expect(short.status).toBe(1);
    expect(short.stdout).toMatch(/is 50\.0%, under --min-coverage 75/);
    expect(run("--min-coverage", "abc").status).toBe(2);
  });
});
