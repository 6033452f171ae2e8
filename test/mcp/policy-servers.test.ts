import { describe, expect, it } from "vitest";
import { formatIssue, PolicyLoadError } from "../../src/core/index.js";
import { compilePolicyText } from "../../src/policy/index.js";

function issues(text: string): string[] {
  try {
    compilePolicyText(text, "p.yaml");
    return [];
  } catch (error) {
    if (error instanceof PolicyLoadError) return error.issues.map(formatIssue);
    throw error;
  }
}

describe("policy `servers.<id>` keys for the MCP gateway", () => {
  it("accepts produces, pins, first_use and per-tool produces", () => {
    const policy = compilePolicyText(
      "version: 1\nservers:\n  web:\n    produces: [untrusted]\n    pins: ask\n    first_use: approve\n    tools:\n      fetch: { produces: [web] }\n",
    );
    expect(policy.serverLabels.web).toEqual(["untrusted"]);
    expect(policy.loaded.policy.servers?.web).toMatchObject({
      pins: "ask",
      first_use: "approve",
      tools: { fetch: { produces: ["web"] } },
    });
  });

  it("points at a wrong value", () => {
    expect(
      issues("version: 1\nservers:\n  web:\n    pins: allow\n    tools:\n      fetch: { produce: [x] }\n"),
    ).toEqual([
      expect.stringMatching(/p\.yaml:4:11: `servers\.web\.pins`: `allow` is not one of `deny`, `ask`/),
      expect.stringMatching(/p\.yaml:6:16: unknown key `produce`/),
    ]);
  });
});
