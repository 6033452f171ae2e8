import type { Call, Decision } from "../../src/core/index.js";
import { PolicyLoadError } from "../../src/core/index.js";
import { evaluateCall, Session } from "../../src/gateway/index.js";
import { compilePolicy, loadPolicyText } from "../../src/policy/index.js";
import type { CompiledPolicy, LoadedPolicy } from "../../src/policy/index.js";
import { policySchema } from "../../src/policy/schema.js";
import { parseSource } from "../../src/policy/source.js";
import { referenceDecide } from "../../src/policy/reference.js";
import type { ReferenceDecision } from "../../src/policy/reference.js";
import { policyText } from "./arbitraries.js";
import type { SessionPlan } from "./arbitraries.js";

/** What the engine and the reference must agree on. */
export interface Summary {
  verdict: string;
  rule: string | null;
  matched: string[];
  findings: string[];
  labels: string[];
}

/** Compiles a generated policy through YAML (keeping -0 and infinities); undefined if it does not load. */
export function compileGenerated(policy: unknown): CompiledPolicy | undefined {
  try {
    return compilePolicy(loadPolicyText(policyText(policy), "generated.yaml"));
  } catch (error) {
    if (error instanceof PolicyLoadError) return undefined;
    throw error;
  }
}

const objectSource = parseSource("generated.json", "{}").source;

/**
 * Compiles a generated policy without its text: the schema checks the object and the compiler
 * runs as usual, but no YAML is parsed (most of the time of a case). The laws use this; the
 * differential test and the file-order law go through the real loader.
 */
export function compileObject(policy: unknown): CompiledPolicy | undefined {
  const parsed = policySchema().safeParse(policy);
  if (!parsed.success) return undefined;
  const origin = (path: Array<string | number>) => ({ source: objectSource, path });
  const loaded: LoadedPolicy = {
    policy: parsed.data,
    source: objectSource,
    sources: [objectSource],
    origins: {
      rules: (parsed.data.rules ?? []).map((_, i) => origin(["rules", i])),
      limits: (parsed.data.limits ?? []).map((_, i) => origin(["limits", i])),
      tests: [],
      tools: new Map(),
      shorthand: new Map(),
      detect: new Map(),
    },
    hash: "",
  };
  try {
    return compilePolicy(loaded);
  } catch (error) {
    if (error instanceof PolicyLoadError) return undefined;
    throw error;
  }
}

/** A real gateway session holding the planned outputs and inputs. */
export function sessionFor(plan: SessionPlan | undefined, policy: CompiledPolicy): Session | undefined {
  if (!plan) return undefined;
  const session = new Session({ id: "s1", labelMinMatch: policy.labelMinMatch });
  for (const output of plan.outputs) session.recordOutput("web_fetch", output.text, output.labels);
  for (const input of plan.inputs) session.input(input.text, { labels: input.labels });
  for (const value of plan.values) session.recordValues("lookup", value);
  return session;
}

/** The reference's view of the same session: its labels, its flow hits into `call.args`, endorsement. */
export function referenceFor(
  policy: CompiledPolicy,
  call: Call,
  session: Session | undefined,
): ReferenceDecision {
  let flows: ReturnType<Session["flowsInto"]> = [];
  try {
    if (session?.hasLabelledContent && call.args && typeof call.args === "object")
      flows = session.flowsInto(call.args);
  } catch {
    // Arguments the engine refuses as malformed (a throwing getter, 10,000 levels): never scanned.
  }
  return referenceDecide(policy.loaded.policy, call, {
    seen: session?.seen,
    flows,
    endorsed: (text, labels) => session?.endorsed(text, labels) ?? false,
    fromValues: (text, sources) => sources.some((source) => session?.inValueSet(text, source) ?? false),
    view: session?.view(),
    inputs: session?.inputs,
  });
}

export function summarize(decision: Decision | ReferenceDecision): Summary {
  const matched =
    "matched" in decision && decision.matched
      ? decision.matched
      : decision.rule === null
        ? []
        : [decision.rule];
  return {
    verdict: decision.verdict,
    rule: decision.rule,
    matched: [...matched].sort(),
    findings: decision.findings.map((f) => f.code).sort(),
    labels: [...decision.labels].sort(),
  };
}

/** Decides with both; the caller asserts the summaries are equal. */
export function decideBoth(
  policy: CompiledPolicy,
  call: Call,
  session: Session | undefined,
): { engine: Summary; reference: Summary } {
  return {
    engine: summarize(evaluateCall(policy, call, session)),
    reference: summarize(referenceFor(policy, call, session)),
  };
}
