import { describe, expect, it } from "vitest";
import { PolicyLoadError } from "../core/index.js";
import { compilePolicyText } from "./index.js";

/** Every problem of a policy, as `file:line: message` lines (and help). */
function problems(text: string, file = "/p/policy.yaml"): PolicyLoadError {
  try {
    compilePolicyText(text, file);
  } catch (error) {
    if (error instanceof PolicyLoadError) return error;
    throw error;
  }
  throw new Error("the policy loaded");
}

const BAD = `version: 1
default: deny
tools:
  web_fetch:
    args:
      url: { url: { privat: block } }
rules:
  - name: r1
    when: { tool: a, args.x: { gtt: 1 } }
    verdict: denyy
  - name: r1
    when: { expr: "tool ==" }
    verdict: deny
  - name: r3
    when: { tol: x }
    verdict: allow
limits:
  - { name: l, rate: "3/fortnight" }
`;

describe("validate reports every error in one run", () => {
  it("schema, declaration, duplicate-name, operator and CEL errors together", () => {
    const error = problems(BAD);
    const lines = error.issues.map((issue) => `${issue.line}: ${issue.message}`);
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^6: .*privat/),
        expect.stringMatching(/^9: .*gtt/),
        expect.stringMatching(/^10: .*verdict/),
        expect.stringMatching(/^11: .*rule name `r1`/),
        expect.stringMatching(/^12: /),
        expect.stringMatching(/^15: .*tol/),
        expect.stringMatching(/^18: .*rate/),
      ]),
    );
    // In file order.
    const numbers = error.issues.map((issue) => issue.line);
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
  });

  it("did you mean for a misspelled option, and the choices for an invalid verdict", () => {
    const error = problems(BAD);
    const privat = error.issues.find((issue) => issue.message.includes("privat"));
    expect(privat?.help).toContain("did you mean `private`?");
    const verdict = error.issues.find((issue) => issue.line === 10);
    expect(`${verdict?.message} ${verdict?.help ?? ""}`).toMatch(/allow.*flag.*ask.*deny/);
    expect(verdict?.help).toContain("did you mean `deny`?");
  });

  it("library errors name the file, or say the text had none", () => {
    expect(problems("version: 1\nfoo: 1\n", "/p/named.yaml").message).toContain("/p/named.yaml:2:1");
    const unnamed = (() => {
      try {
        compilePolicyText("version: 1\nfoo: 1\n");
      } catch (error) {
        return (error as Error).message;
      }
      return "";
    })();
    expect(unnamed).not.toContain(`${process.cwd()}/<policy>`);
    expect(unnamed).toMatch(/^<policy text>:2:1/);
  });
});
