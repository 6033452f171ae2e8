import { describe, expect, it } from "vitest";
import type { Decision } from "../core/index.js";
import { refusal } from "./mcp/gate.js";
import { refusalText } from "./protect.js";

const base: Decision = {
  verdict: "deny",
  rule: "no-untrusted-into-external-sinks",
  reason: "Untrusted content may not reach an external sink.",
  findings: [],
  labels: [],
  tool: "send_email",
};

describe("the refusal text a model reads has one full stop per sentence", () => {
  it.each([
    ["a message ending in a period", base.reason],
    ["a message without one", "Untrusted content may not reach an external sink"],
  ])("deny, %s", (_, reason) => {
    const text = refusalText({ ...base, reason }, { tool: "send_email" });
    expect(text).toBe(
      "toolwarden denied `send_email` (rule `no-untrusted-into-external-sinks`): Untrusted content may not reach an external sink. The call was not run.",
    );
  });

  it("ask with a pending approval", () => {
    const text = refusalText({ ...base, verdict: "ask", approval: "ap-1" }, { tool: "send_email" });
    expect(text).not.toMatch(/\.\.|\.;/);
    expect(text).toContain(
      "external sink; approval ap-1 is pending. The call was not run; once a human approves it, the same call may be retried.",
    );
  });

  it("the MCP gate tells the model what the SDK adapters tell it", () => {
    for (const decision of [base, { ...base, verdict: "ask" as const, approval: "ap-3" }]) {
      const [result] = refusal(decision).content as Array<{ text: string }>;
      expect(result.text).toBe(refusalText(decision, { tool: "send_email" }));
    }
  });

  it("MCP tool results too", () => {
    const [deny] = refusal(base).content as Array<{ text: string }>;
    expect(deny.text).not.toMatch(/\.\./);
    const [ask] = refusal({ ...base, verdict: "ask", approval: "ap-2" }).content as Array<{ text: string }>;
    expect(ask.text).not.toMatch(/\.\./);
  });
});
