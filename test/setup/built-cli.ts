import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";

/*
 * The tests that run the CLI as a user does spawn the built one (`dist/`): starting it through tsx
 * costs a second of transpiling per process, and there are about a hundred such processes per run.
 * `buildIfStale` (the global setup) builds it first when any source is newer than the build, so a
 * stale dist/ never gives a false result.
 */

export const ROOT = resolve(import.meta.dirname, "../..");

/** The CLI under test; `TW_CLI` points at another build (e.g. main's, to see a regression test fail there). */
export function cliPath(): string {
  return process.env.TW_CLI ?? join(ROOT, "dist/src/cli/main.js");
}

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/** Builds dist/ when it is missing or older than a file under src/ (`TW_REBUILD=1` forces it). */
export function buildIfStale(): void {
  if (process.env.TW_CLI) return;
  const built = join(ROOT, "dist/src/cli/main.js");
  const fresh =
    existsSync(built) &&
    process.env.TW_REBUILD !== "1" &&
    statSync(built).mtimeMs >= newestSource(join(ROOT, "src"));
  if (fresh) return;
  console.log("tests: building dist/ (the CLI tests run the built CLI)");
  execFileSync("npm", ["run", "build"], { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"] });
}

export default buildIfStale;
