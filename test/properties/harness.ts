import type { Call, Decision } from "../../src/core/index.js";
import { PolicyLoadError } from "../../src/core/index.js";
import { evaluateCall, Session } from "../../src/gateway/index.js";
import { compilePolicy, loadPolicyText } from "../../src/policy/index.js";
import type { CompiledPolicy, LoadedPolicy } from "../../src/policy/index.js";
import { policySchema } from "../../src/policy/schema.js";
import { parseSource } from "../../src/policy/source.js";
import { globMatches, referenceDecide } from "../../src/policy/reference.js";
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

/** A limit as the decide-level property generates it: a tool glob, a count, a scope, a verdict. */
export interface GenLimit {
  name: string;
  tool: string;
  max: number;
  per: "session" | "agent" | "tool" | "global";
  verdict?: "deny" | "ask" | "flag";
}

/** What the decide-level property adds to a generated policy: limits, tool costs and a budget. */
export interface StatePlan {
  limits: GenLimit[];
  costs: Record<string, number>;
  budget?: { max: number; ask_above?: number; per: "session" | "agent" | "global" };
}

/** A contribution of the model: a name and its verdict. */
interface Ranked {
  verdict: string;
  rule: string;
}

/**
 * The decide-level reference: the reference evaluator's decision, then limits and the budget as
 * docs/policy.md states them, over a sequence of calls in one window (the clock stands still).
 * Written from the rules, not from the gateway's stages: a call that is denied, malformed or an
 * internal error touches no counter; `budget.ask_above` asks; an `ask` counts nothing (its
 * approval is opened) but a full limit still names itself; an approved `ask` is allowed by its
 * approval (once) and then runs, unless a limit is full; a call that runs counts in every
 * matching limit at once or, when one is full, in none; then spends its cost unless that passes
 * the budget. A later contribution decides when it is more severe than the decision, or as
 * severe with a smaller name, or when the decision fell to `default`.
 */
export class DecideModel {
  readonly #counts = new Map<string, number>();
  readonly #spent = new Map<string, number>();

  constructor(
    private readonly policy: CompiledPolicy,
    private readonly plan: StatePlan,
  ) {}

  /** Decides `call`; `approved`: an approver has approved the approval this exact call opened. */
  decide(call: Call, approved?: string): Summary {
    const evaluated = summarize(referenceFor(this.policy, call, undefined));
    if (
      evaluated.verdict === "deny" ||
      evaluated.rule === "malformed-call" ||
      evaluated.rule === "internal-error"
    )
      return evaluated;
    let decision = evaluated;
    const add = (c: Ranked) => {
      decision = contributeTo(decision, c);
    };
    const cost = this.plan.costs[call.tool] ?? 0;
    const { budget } = this.plan;
    const spendKey = budget && cost > 0 ? `${budget.per}=${scopeOf(call, budget.per)}` : undefined;
    if (spendKey && budget?.ask_above !== undefined && cost > budget.ask_above)
      add({ verdict: "ask", rule: "budget.ask_above" });
    const limits = this.plan.limits.filter((limit) => globMatches(limit.tool, call.tool));
    const keys = limits.map((limit) => `${limit.name}/${scopeOf(call, limit.per)}`);
    const full = limits.filter((limit, i) => (this.#counts.get(keys[i]) ?? 0) >= limit.max);
    for (const limit of full) add({ verdict: limit.verdict ?? "deny", rule: limit.name });
    if (full.length) return decision;
    if (decision.verdict === "ask") {
      if (approved === undefined) return decision;
      // The approval answers the ask: it decides, what it answered stays listed and never decides again.
      decision = {
        ...decision,
        verdict: "allow",
        rule: `approval:${approved}`,
        matched: [...decision.matched, `approval:${approved}`].sort(),
      };
    }
    for (const key of keys) this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
    if (spendKey && budget) {
      const spent = this.#spent.get(spendKey) ?? 0;
      if (spent + cost > budget.max) add({ verdict: "deny", rule: "budget" });
      else this.#spent.set(spendKey, spent + cost);
    }
    return decision;
  }
}

function scopeOf(call: Call, per: GenLimit["per"]): string {
  if (per === "session") return call.session ?? "none";
  if (per === "agent") return String(call.agent?.id ?? "anonymous");
  if (per === "tool") return call.tool;
  return "";
}

const RANK: Record<string, number> = { allow: 0, flag: 1, ask: 2, deny: 3 };

function contributeTo(decision: Summary, c: Ranked): Summary {
  const before = decision.rule === null ? [] : decision.matched;
  const decides =
    decision.rule === null ||
    RANK[c.verdict] > RANK[decision.verdict] ||
    (RANK[c.verdict] === RANK[decision.verdict] && c.rule < decision.rule);
  return {
    ...decision,
    verdict: decides ? c.verdict : decision.verdict,
    rule: decides ? c.rule : decision.rule,
    matched: [...before, c.rule].sort(),
  };
}
