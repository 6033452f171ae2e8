import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { toolwardenVersion } from "./version.js";

describe("toolwardenVersion", () => {
  it("is package.json's version", () => {
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, "..", "..", "package.json"), "utf8"));
    expect(toolwardenVersion()).toBe(pkg.version);
  });
});
