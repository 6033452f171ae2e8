import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import * as toolwarden from "../src/index.js";

const ROOT = join(import.meta.dirname, "..");
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));

/** Every bare package a module pulls in through its static imports, following relative imports. */
function staticPackages(entry: string): Set<string> {
  const seen = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, "utf8");
    for (const [, spec] of text.matchAll(/^(?:import|export)\s+(?!type\b)[^;]*?from\s+"([^"]+)"/gm)) {
      if (spec.startsWith(".")) visit(resolve(dirname(file), spec.replace(/\.js$/, ".ts")));
      else if (!spec.startsWith("node:"))
        packages.add(spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]);
    }
  };
  visit(entry);
  return packages;
}

const HEAVY = [
  "pg",
  "ioredis",
  "better-sqlite3",
  "@modelcontextprotocol/sdk",
  "hono",
  "@hono/node-server",
  "openai",
  "@anthropic-ai/sdk",
  "ai",
  "@langchain/core",
  "@openai/agents",
  "playwright-core",
];

describe("the public surface", () => {
  it("pins the core entry point's exports", () => {
    expect(Object.keys(toolwarden).sort()).toMatchInlineSnapshot(`
      [
        "ApprovalRequiredError",
        "ERROR_CODES",
        "MemoryStateStore",
        "PolicyDeniedError",
        "PolicyLoadError",
        "SEVERITY",
        "Session",
        "ToolwardenError",
        "VERDICTS",
        "Warden",
        "compilePolicy",
        "compilePolicyFile",
        "compilePolicyFileAsync",
        "compilePolicyObject",
        "compilePolicyObjectAsync",
        "compilePolicyText",
        "compilePolicyTextAsync",
        "evaluateCall",
        "hashCall",
        "loadPolicyFile",
      ]
    `);
  });

  it("the core entry loads no heavy dependency", () => {
    const packages = staticPackages(join(ROOT, "src/index.ts"));
    expect([...packages].filter((p) => HEAVY.includes(p))).toEqual([]);
  });

  it("every subpath export points at a source module that exists", () => {
    const subpaths = Object.entries(pkg.exports as Record<string, string | { default: string }>).filter(
      ([key]) => key !== "./package.json",
    );
    expect(subpaths.length).toBeGreaterThan(5);
    for (const [key, target] of subpaths) {
      const built = typeof target === "string" ? target : target.default;
      const source = join(ROOT, built.replace(/^\.\/dist\//, "").replace(/\.js$/, ".ts"));
      expect(existsSync(source), `${key} -> ${source}`).toBe(true);
    }
  });
});
