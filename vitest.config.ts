import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// One property-test seed per run, shared by every worker and printed, so any failure replays with
// TW_PROPERTY_SEED=<seed> (see test/setup/property-seed.ts).
process.env.TW_PROPERTY_SEED ??= String(Math.floor(Math.random() * 2 ** 31));
console.log(`property tests: TW_PROPERTY_SEED=${process.env.TW_PROPERTY_SEED}`);

/**
 * TW_SDK_DIR=test/adapters/oldest runs the adapter tests against the agent SDKs installed there
 * (the oldest versions the peer ranges admit) instead of the project's own (the newest). Each SDK
 * specifier the tests import is resolved by Node from inside that folder (so exports maps and the
 * ESM entry apply, as for a user) and aliased to the file it names.
 */
function oldestSdkAliases(): Array<{ find: RegExp; replacement: string }> {
  const dir = process.env.TW_SDK_DIR;
  if (!dir) return [];
  const names = Object.keys(JSON.parse(readFileSync(resolve(dir, "package.json"), "utf8")).dependencies);
  const specifiers = new Set<string>();
  for (const file of readdirSync("test/adapters").filter((f) => f.endsWith(".ts")))
    for (const [, spec] of readFileSync(join("test/adapters", file), "utf8").matchAll(
      /(?:from |import\()"([^"]+)"/g,
    ))
      if (names.some((n) => spec === n || spec.startsWith(`${n}/`))) specifiers.add(spec);
  for (const name of names) specifiers.add(name);
  const resolved: Record<string, string | null> = JSON.parse(
    execFileSync(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `const out = {}; for (const s of ${JSON.stringify([...specifiers])}) { try { out[s] = import.meta.resolve(s); } catch { out[s] = null; } } console.log(JSON.stringify(out));`,
      ],
      { cwd: resolve(dir), encoding: "utf8" },
    ),
  );
  console.log(`adapter tests: agent SDKs from ${dir}`);
  return (
    Object.entries(resolved)
      .filter((entry): entry is [string, string] => entry[1] !== null && entry[1].startsWith("file:"))
      // Exact matches: a string alias would also rewrite the package's subpaths (`openai/version`).
      .map(([spec, url]) => ({
        find: new RegExp(`^${spec.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}$`),
        replacement: fileURLToPath(url),
      }))
  );
}

const BROWSER_TESTS = "test/**/*.browser.test.ts";

export default defineConfig({
  resolve: { alias: oldestSdkAliases() },
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Every core: vitest's default leaves one idle, which on a 2-core CI machine ran the files one at
    // a time, although most of them wait on child processes, servers and disks rather than compute.
    maxWorkers: "100%",
    setupFiles: ["test/setup/property-seed.ts"],
    // The CLI tests run the built CLI: build it first when a source is newer than dist/.
    globalSetup: ["test/setup/built-cli.ts"],
    projects: [
      {
        extends: true,
        test: {
          name: "node",
          include: ["src/**/*.test.ts", "test/**/*.test.ts"],
          exclude: ["**/node_modules/**", BROWSER_TESTS],
        },
      },
      {
        // The real-browser tests run after everything else, one file at a time: two headless
        // Chromiums driving two dashboards at once timed out in CI while each passed alone.
        extends: true,
        test: {
          name: "browser",
          include: [BROWSER_TESTS],
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
