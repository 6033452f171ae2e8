import { describe, expect, it } from "vitest";
import { compilePolicyText, explainPolicy } from "./index.js";

describe("explain: provenance declarations (issue 18, item 8)", () => {
  it("shows fields, what other text carries, value sets and warnings", () => {
    const text = explainPolicy(
      compilePolicyText(`version: 1
tools:
  get_transactions: { produces: [], fields: { "*.subject": [untrusted], "*.sender": [] } }
  read_email: { fields: { body: [untrusted, web] }, declassifies: [web] }
  summarize: { propagates: true }
rules:
  - { name: known, when: { args.to: { from: [get_transactions] } }, verdict: flag }
`),
    );
    expect(text).toContain(
      "  get_transactions (a trusted value set for `from` (its parts with no label))\n" +
        "    fields: *.subject -> untrusted; *.sender -> no label\n" +
        "    on objects and their JSON or YAML text; other text carries untrusted",
    );
    expect(text).toContain("  read_email (declassifies web)\n    fields: body -> untrusted, web\n");
    expect(text).toContain("other text carries untrusted\n");
    expect(text).toContain("  summarize (propagates the labels that flow into it)");
    expect(text).toContain("warnings:\n  4:17: tool `read_email` has `fields` and no `produces`");
  });
});
