import { readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { importsOf, loadedBy, ROOT, SRC, sourceFiles } from "./graph.js";

const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));

/** The source module behind each package entry (subpath exports and the CLI). */
function entries(): string[] {
  const built = [
    ...Object.entries(pkg.exports as Record<string, string | { default: string }>)
      .filter(([key]) => key !== "./package.json")
      .map(([, target]) => (typeof target === "string" ? target : target.default)),
    ...Object.values(pkg.bin as Record<string, string>),
  ];
  return built.map((file) => join(ROOT, file.replace(/^(\.\/)?dist\//, "").replace(/\.js$/, ".ts")));
}

describe("the policy layer and its engines", () => {
  it("policy/ imports neither cedar/ nor judge/ (type-only imports included): they register", () => {
    const wrong = sourceFiles(join(SRC, "policy")).flatMap((file) =>
      importsOf(file)
        .map((target) => relative(SRC, target))
        .filter((target) => /^(cedar|judge)\//.test(target))
        .map((target) => `${relative(SRC, file)} -> ${target}`),
    );
    expect(wrong).toEqual([]);
  });

  it("every package entry that can compile a policy registers the engines", () => {
    const compile = join(SRC, "policy", "compile.ts");
    const registration = join(SRC, "gateway", "engines.ts");
    const compiling = entries().filter((entry) => loadedBy(entry).has(compile));
    expect(compiling.length).toBeGreaterThan(3);
    expect(
      compiling.filter((entry) => !loadedBy(entry).has(registration)).map((e) => relative(ROOT, e)),
    ).toEqual([]);
  });
});
