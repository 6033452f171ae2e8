import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cliPath, ROOT } from "../setup/built-cli.js";

export { ROOT };
export const EXAMPLE = join(ROOT, "examples/support-bot/policy.yaml");

/** Runs the real (built) CLI in a child process. */
export function cli(args: string[], input?: string) {
  const result = spawnSync(process.execPath, [cliPath(), ...args], {
    input,
    encoding: "utf8",
    cwd: ROOT,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A temporary folder and a writer of named files in it; returns each file's path. */
export function tempFiles(prefix: string) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  return { dir, file };
}
