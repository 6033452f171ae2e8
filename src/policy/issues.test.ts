import { describe, expect, it } from "vitest";
import { PolicyLoadError } from "../core/index.js";
import { compilePolicyText } from "./index.js";

function issuesOf(text: string) {
  try {
    compilePolicyText(text, "p.yaml");
  } catch (error) {
    if (error instanceof PolicyLoadError)
      return error.issues.map(({ code, path, line }) => ({ code, path, line }));
    throw error;
  }
  throw new Error("the policy loaded");
}

describe("policy issues carry a code and the path they are about", () => {
  it.each([
    ["a YAML error", "version: 1\nallow: [a\n", { code: "yaml" }],
    ["an unknown key", "version: 1\nalow: [a]\n", { code: "unknown_key", path: "alow" }],
    [
      "a compiler check",
      "version: 1\nrules:\n  - name: r\n    when: { tol: x }\n    verdict: deny\n",
      { code: "invalid", path: "rules.0.when.tol" },
    ],
    [
      "a word not among the allowed ones",
      "version: 1\ndefault: maybe\n",
      { code: "invalid_value", path: "default" },
    ],
  ])("%s", (_, text, expected) => {
    expect(issuesOf(text)[0]).toMatchObject(expected);
  });
});
