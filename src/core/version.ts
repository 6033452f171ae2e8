import { readFileSync } from "node:fs";

let cached: string | undefined;

/** toolwarden's version, read once from its package.json (from `src/` or `dist/src/`); `0.0.0` if it cannot be found. */
export function toolwardenVersion(): string {
  cached ??= readVersion();
  return cached;
}

function readVersion(): string {
  for (const rel of ["../../package.json", "../../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), "utf8"));
      if (pkg.name === "toolwarden") return String(pkg.version);
    } catch {
      // not at this level
    }
  }
  return "0.0.0";
}
