/**
 * The wire schemas (server/schemas.ts) and the core types (core/call.ts, core/decision.ts) describe
 * the same Call and Decision. The type half is checked by `tsc` (this file is in the project); the
 * runtime half checks that a Decision with every field set survives the schema unchanged.
 */
import { describe, expect, it } from "vitest";
import type { z } from "zod";
import type { Call, Decision, Finding } from "../../src/core/index.js";
import type { CallSchema, FindingSchema } from "../../src/server/schemas.js";
import { DecisionSchema } from "../../src/server/schemas.js";

type WireDecision = z.infer<typeof DecisionSchema>;
type WireFinding = z.infer<typeof FindingSchema>;
type WireCall = z.infer<typeof CallSchema>;

/** `true` only when A and B have exactly the same keys. */
type SameKeys<A, B> = [Exclude<keyof A, keyof B>, Exclude<keyof B, keyof A>] extends [never, never]
  ? true
  : false;

const decisionKeys: SameKeys<WireDecision, Decision> = true;
const findingKeys: SameKeys<WireFinding, Finding> = true;
/** The wire call carries a plan's `token` besides the core fields. */
const callKeys: SameKeys<Omit<WireCall, "token">, Call> = true;

/** Each direction is assignable: what the engine returns is what the API documents, and back. */
const decisionOut = (d: Decision): WireDecision => d;
const decisionIn = (d: WireDecision): Decision => d;
const callIn = (c: WireCall): Call => c;

describe("wire schemas and core types", () => {
  it("agree on the keys of Call, Decision and Finding (checked by tsc)", () => {
    expect([decisionKeys, findingKeys, callKeys]).toEqual([true, true, true]);
    expect([typeof decisionOut, typeof decisionIn, typeof callIn]).toEqual([
      "function",
      "function",
      "function",
    ]);
  });

  it("a Decision with every field set passes the schema unchanged", () => {
    const full: Required<Decision> = {
      verdict: "ask",
      rule: "r",
      reason: "why",
      findings: [{ code: "url.private", message: "m", arg: "url", verdict: "deny" }],
      labels: ["untrusted"],
      matched: ["r", "s"],
      flows: [{ label: "untrusted", arg: "body", source: "web_fetch#1" }],
      tool: "t",
      approval: "a-1",
      enforced: false,
      observed: ["s"],
    };
    expect(DecisionSchema.parse(full)).toEqual(full);
  });
});
