import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * `npm install toolwarden` as a library user does it: the packed tarball into a fresh ESM project.
 * The drivers and engines a deployment chooses (pg, ioredis, Cedar, the PostgreSQL parser) are
 * optional peers, so they are absent, the core still decides, and asking for one names it.
 */
const ROOT = join(import.meta.dirname, "..", "..");
const OPTIONAL = ["pg", "ioredis", "@cedar-policy/cedar-wasm", "libpg-query"];
const npm = (args: string[], cwd: string) =>
  execFileSync("npm", [...args, "--no-audit", "--no-fund", "--loglevel=error"], { cwd, encoding: "utf8" });

let project: string;

beforeAll(() => {
  if (!existsSync(join(ROOT, "dist/src/index.js"))) npm(["run", "build"], ROOT);
  project = mkdtempSync(join(tmpdir(), "tw-install-"));
  const tarball = npm(["pack", "--pack-destination", project], ROOT).trim().split("\n").at(-1)!;
  writeFileSync(
    join(project, "package.json"),
    JSON.stringify({ name: "app", private: true, type: "module" }),
  );
  npm(["install", "--prefer-offline", join(project, tarball)], project);
}, 240_000);
afterAll(() => rmSync(project, { recursive: true, force: true }));

function run(script: string) {
  writeFileSync(join(project, "script.mjs"), script);
  const result = spawnSync(process.execPath, ["script.mjs"], { cwd: project, encoding: "utf8" });
  return { code: result.status, out: result.stdout + result.stderr };
}

describe("npm install toolwarden (packed tarball, fresh project)", () => {
  it("leaves out the optional drivers and engines", () => {
    const installed = readdirSync(join(project, "node_modules"));
    for (const pkg of OPTIONAL) expect(existsSync(join(project, "node_modules", pkg)), pkg).toBe(false);
    expect(installed).toContain("toolwarden");
  });

  it("decides with the core alone", () => {
    const { code, out } = run(`
      import { Warden } from "toolwarden";
      const warden = Warden.fromText("version: 1\\ndefault: deny\\nallow: [web_fetch]\\ntools:\\n  web_fetch:\\n    args:\\n      url: { url: { private: block } }\\n");
      const d = await warden.decide({ tool: "web_fetch", args: { url: "http://169.254.169.254/latest/meta-data" } });
      console.log(JSON.stringify({ verdict: d.verdict, rule: d.rule }));
    `);
    expect(code, out).toBe(0);
    expect(JSON.parse(out.trim())).toEqual({ verdict: "deny", rule: "url.metadata" });
  });

  it("names the package to install when a store or an engine needs one", () => {
    writeFileSync(join(project, "authz.cedar"), "permit(principal, action, resource);\n");
    const { code, out } = run(`
      import { Warden } from "toolwarden";
      import { createStateStore } from "toolwarden/stores";
      for (const attempt of [
        () => createStateStore("redis://127.0.0.1:6379/0"),
        async () => Warden.fromText("version: 1\\nengine: { cedar: { policies: authz.cedar } }\\n", { file: "policy.yaml" }),
      ]) {
        try { await attempt(); console.log("no error"); }
        catch (error) { console.log(error.code, error.message.split("\\n").at(-1)); }
      }
    `);
    expect(code, out).toBe(0);
    expect(out).toContain("missing_package help: npm install ioredis");
    expect(out).toContain("missing_package help: npm install @cedar-policy/cedar-wasm");
  });

  it("denies SQL in the postgresql dialect without the PostgreSQL parser, naming the package", () => {
    const { code, out } = run(`
      import { Warden } from "toolwarden";
      const warden = Warden.fromText("version: 1\\ndefault: deny\\nallow: [query]\\ntools:\\n  query:\\n    args:\\n      sql: { sql: { dialect: postgresql, allow: [select] } }\\n");
      await warden.ready();
      const d = await warden.decide({ tool: "query", args: { sql: "SELECT 1" } });
      console.log(JSON.stringify({ verdict: d.verdict, reason: d.reason }));
    `);
    expect(code, out).toBe(0);
    const decision = JSON.parse(out.trim());
    expect(decision.verdict).toBe("deny");
    expect(decision.reason).toContain("npm install libpg-query");
  });
});
