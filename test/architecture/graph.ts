import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

export const ROOT = join(import.meta.dirname, "..", "..");
export const SRC = join(ROOT, "src");

/** Every `.ts` source file under `dir`, tests left out. */
export function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith(".ts") && !name.endsWith(".test.ts") ? [path] : [];
  });
}

/**
 * Every relative module a file imports or re-exports: type-only and dynamic imports included, or
 * with `runtime`, only what loads when the file loads (no `import type`, no dynamic import).
 */
export function importsOf(file: string, { runtime = false } = {}): string[] {
  const text = readFileSync(file, "utf8");
  const specs = [
    ...[...text.matchAll(/^\s*(?:import|export)\s([^;]*?)from\s+["']([^"']+)["']/gm)]
      .filter((match) => !runtime || !/^type\s/.test(match[1]))
      .map((match) => match[2]),
    ...[...text.matchAll(/^\s*import\s+["']([^"']+)["']/gm)].map((match) => match[1]),
    ...(runtime ? [] : [...text.matchAll(/import\(\s*["']([^"']+)["']\s*\)/g)].map((match) => match[1])),
  ];
  return specs
    .filter((spec) => spec.startsWith("."))
    .map((spec) => resolve(dirname(file), spec.replace(/\.js$/, ".ts")))
    .filter((path) => {
      try {
        return statSync(path).isFile();
      } catch {
        return false;
      }
    });
}

/** The files `entry` loads at run time, itself included. */
export function loadedBy(entry: string): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const next of importsOf(file, { runtime: true })) visit(next);
  };
  visit(entry);
  return seen;
}
