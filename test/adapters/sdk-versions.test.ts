import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * The adapter tests run twice in CI: against the project's own SDKs (the newest) and, with
 * TW_SDK_DIR=test/adapters/oldest, against the oldest the peer ranges admit. This proves that a
 * run really loads the SDKs it names, and that the oldest set is the peer ranges' lower bounds.
 */
const ROOT = join(import.meta.dirname, "..", "..");
const read = (file: string) => JSON.parse(readFileSync(file, "utf8"));
const own = read(join(ROOT, "package.json"));
const oldest = read(join(ROOT, "test/adapters/oldest/package.json")).dependencies as Record<string, string>;
const sdkDir = resolve(ROOT, process.env.TW_SDK_DIR ?? ".");
const installed = (name: string) =>
  read(join(sdkDir, "node_modules", name, "package.json")).version as string;

/** What an `import` in a test file loads, read through the package's own public exports. */
const LOADED: Record<string, () => Promise<string>> = {
  openai: async () => (await import("openai/version")).VERSION,
  "@anthropic-ai/sdk": async () => (await import("@anthropic-ai/sdk/version")).VERSION,
  ai: async () => (await import("ai/package.json", { with: { type: "json" } })).default.version,
  "@langchain/core": async () =>
    (await import("@langchain/core/package.json", { with: { type: "json" } })).default.version,
};

describe(`agent SDKs under test (${process.env.TW_SDK_DIR ?? "the project's own"})`, () => {
  for (const [name, loaded] of Object.entries(LOADED)) {
    it(`${name}: the version a test imports is the one installed for this run`, async () => {
      expect(await loaded()).toBe(installed(name));
    });
  }

  it("the oldest set is exactly the lower bound of each peer range, and the newest is within it", () => {
    for (const [name, range] of Object.entries(own.peerDependencies as Record<string, string>)) {
      if (!(name in oldest)) continue;
      const [, lower, upper] = /^>=(\S+) <(\S+)$/.exec(range) ?? [];
      expect(lower, `${name}: peer range "${range}" is written ">=oldest <next-major"`).toBeDefined();
      expect(oldest[name], name).toBe(lower);
      const newest = read(join(ROOT, "node_modules", name, "package.json")).version;
      const major = (v: string) => Number(v.replace(/^0\./, "").split(".")[0]);
      expect(major(newest), `${name} ${newest} < ${upper}`).toBeLessThan(major(upper));
    }
  });
});
