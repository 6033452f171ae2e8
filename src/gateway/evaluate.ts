import type { Agent, Call, Decision, Finding, FlowEvidence, Verdict } from "../core/index.js";
import { ToolwardenError } from "../core/index.js";
import type { CompiledLimit, CompiledPolicy, CompiledTool, EvalContext, FlowHit } from "../policy/index.js";
import { BUILTIN_RULES, byRank, outranks, remember } from "./combine.js";
import type { Contribution } from "./combine.js";
import { argsProblem, forEachString, valueAt } from "./inspect.js";

/** What the engine reads of a session while deciding; the gateway's `Session` provides it. */
export interface SessionState {
  readonly id: string;
  readonly seen: ReadonlySet<string>;
  /** Labels flowing into these arguments (content fingerprints), with the argument leaf they sit in. */
  flowsInto(args: Record<string, unknown>): FlowHit[];
  /** Whether the session holds labelled content at all (skip scanning when not). */
  readonly hasLabelledContent: boolean;
  endorsed(text: string, labels: readonly string[]): boolean;
  inValueSet(text: string, source: string): boolean;
  /** Labelled input recorded on the session (the user's request), for `user_asked`. */
  readonly inputs?: ReadonlyArray<{ text: string; labels: readonly string[] }>;
  view(): Record<string, unknown>;
}

const EMPTY_ARGS: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>;
const NO_AGENT: Agent = Object.freeze({});
const NO_FINDINGS: Finding[] = [];

/**
 * Decides one call: a pure function of the compiled policy, the call and the session state.
 * With `limitsOut`, collects the limits whose conditions match (the gateway counts them).
 * Never throws: a malformed call or an internal error gives a Decision (deny, or flag under `fail: open`).
 */
export function evaluateCall(
  policy: CompiledPolicy,
  call: Call,
  session: SessionState | undefined,
  limitsOut?: CompiledLimit[],
): Decision {
  try {
    const problem = readable(call);
    if (problem)
      return single("deny", BUILTIN_RULES.malformedCall, `malformed call: ${problem}`, call, NO_FINDINGS);
    return decide(policy, call, session, limitsOut);
  } catch (error) {
    return internalError(policy, call, error);
  }
}

/** The Decision for an internal error: deny under `fail: closed`, flag (which lets the call run) under `fail: open`. */
export function internalError(policy: CompiledPolicy, call: Call, error: unknown): Decision {
  if (error instanceof ToolwardenError && error.code === "store_unavailable") {
    const verdict: Verdict = policy.failOpen ? "flag" : "deny";
    const mode = policy.failOpen ? "fail: open lets it through, flagged" : "fail: closed denies";
    return single(verdict, BUILTIN_RULES.storeUnavailable, `${error.message} (${mode})`, call, NO_FINDINGS);
  }
  const message = error instanceof Error ? error.message : String(error);
  const verdict: Verdict = policy.failOpen ? "flag" : "deny";
  const mode = policy.failOpen ? "fail: open lets it through, flagged" : "fail: closed denies";
  return single(
    verdict,
    BUILTIN_RULES.internalError,
    `internal error (${mode}): ${message}`,
    call,
    NO_FINDINGS,
  );
}

function single(verdict: Verdict, rule: string, reason: string, call: Call, findings: Finding[]): Decision {
  return {
    verdict,
    rule,
    reason,
    findings,
    labels: [],
    tool: typeof call?.tool === "string" ? call.tool : undefined,
  };
}

/** Why the call is malformed; a call that throws while being read (a getter, a proxy) is malformed too, whatever `fail` says. */
function readable(call: Call): string | undefined {
  try {
    return malformed(call);
  } catch (error) {
    return `the call cannot be read (${error instanceof Error ? error.message : String(error)})`;
  }
}

function malformed(call: Call): string | undefined {
  if (call === null || typeof call !== "object") return "a call is an object with `tool` and `args`";
  if (typeof call.tool !== "string" || call.tool.length === 0) return "`tool` must be a non-empty string";
  if (call.tool.length > 256) return "`tool` is longer than 256 characters";
  const { args } = call;
  if (args !== undefined && (args === null || typeof args !== "object" || Array.isArray(args)))
    return "`args` must be an object";
  if (
    call.agent !== undefined &&
    (call.agent === null || typeof call.agent !== "object" || Array.isArray(call.agent))
  ) {
    return "`agent` must be an object";
  }
  if (call.server !== undefined && typeof call.server !== "string") return "`server` must be a string";
  if (call.session !== undefined && typeof call.session !== "string") return "`session` must be a string";
  if (
    call.cost !== undefined &&
    (typeof call.cost !== "number" || !Number.isFinite(call.cost) || call.cost < 0)
  ) {
    return "`cost` must be a finite, non-negative number";
  }
  if (call.labels !== undefined) {
    const { labels } = call;
    const problem =
      labels === null || typeof labels !== "object" || Array.isArray(labels)
        ? "it is not an object"
        : argsProblem(labels);
    if (problem) return `\`labels\`: ${problem}`;
    for (const names of Object.values(labels)) {
      if (!Array.isArray(names) || !names.every((name) => typeof name === "string"))
        return "`labels` must map argument paths to lists of label names";
    }
  }
  // Conditions and CEL read the agent's attributes as they read arguments: the same bounds apply.
  const agentProblem = call.agent === undefined ? undefined : argsProblem(call.agent);
  if (agentProblem) return `\`agent\`: ${agentProblem}`;
  return args === undefined ? undefined : argsProblem(args);
}

function decide(
  policy: CompiledPolicy,
  call: Call,
  session: SessionState | undefined,
  limitsOut: CompiledLimit[] | undefined,
): Decision {
  const tool = call.tool;
  const args = call.args ?? EMPTY_ARGS;
  const decl = policy.tools.get(tool);
  const findings: Finding[] = [];

  if (!decl) {
    const shadow = policy.shadowCheck(tool);
    if (shadow) findings.push({ ...shadow, verdict: shadow.verdict ?? "deny" });
  }
  if (decl) runChecks(decl, args, findings);
  const detectors = decl ? decl.detectors : policy.detectors;
  if (detectors.length) {
    for (const use of detectors) {
      if (use.verdict === "allow") continue;
      const before = findings.length;
      if (use.detector.scanValue) use.detector.scanValue(args, "", findings);
      else forEachString(args, "", (text, path) => use.detector.scan(text, path, findings));
      for (let i = before; i < findings.length; i++) findings[i].verdict ??= use.verdict;
    }
  }

  const ctx = new CallContext(call, tool, args, decl, findings, session);
  const tally = new Tally();
  for (const finding of findings) tally.add(finding.verdict ?? "deny", finding.code, finding.message);
  const rules = policy.rulesFor(tool);
  for (const rule of rules.always)
    if (rule.when(ctx)) tally.add(rule.verdict, rule.name, rule.reason, rule.judge);
  if (rules.byArg.size) {
    // Rules that need an argument are looked up by the call's own argument names.
    for (const key of Object.keys(args)) {
      const keyed = rules.byArg.get(key);
      if (keyed)
        for (const rule of keyed)
          if (rule.when(ctx)) tally.add(rule.verdict, rule.name, rule.reason, rule.judge);
    }
  }

  if (policy.engines?.length) {
    const contribute = (verdict: Verdict, rule: string, reason: string, judge?: boolean) =>
      tally.add(verdict, rule, reason, judge);
    for (const engine of policy.engines) engine(ctx, contribute);
  }

  if (limitsOut) {
    for (const limit of policy.limitsFor(tool)) if (limit.when(ctx)) limitsOut.push(limit);
  }

  const flowHits = session?.hasLabelledContent || call.labels ? ctx.flows() : undefined;
  const { best, matched } = tally;
  const decision: Decision = best
    ? { verdict: best.verdict, rule: best.rule, reason: best.reason, findings, labels: EMPTY_LABELS, tool }
    : policy.judge?.undecided
      ? {
          verdict: "ask",
          rule: BUILTIN_RULES.judgeUndecided,
          reason: `no rule decided \`${tool}\`; the judge reviews it`,
          findings,
          labels: EMPTY_LABELS,
          tool,
        }
      : {
          verdict: policy.defaultVerdict,
          rule: null,
          reason: `no rule matched \`${tool}\`; the default is ${policy.defaultVerdict}`,
          findings,
          labels: EMPTY_LABELS,
          tool,
        };
  if (matched) {
    matched.sort(byRank);
    decision.matched = matched.map((entry) => entry.rule);
    remember(decision, matched);
  }
  if (flowHits?.length) {
    decision.labels = [...new Set(flowHits.map((hit) => hit.label))];
    decision.flows = dedupeFlows(flowHits);
  }
  return decision;
}

const EMPTY_SET: ReadonlySet<string> = new Set();

/** The contributions to one decision: the one that ranks first, and all of them once there are two. */
class Tally {
  best: Contribution | undefined;
  matched: Contribution[] | undefined;

  add(verdict: Verdict, rule: string, reason: string, judge?: boolean): void {
    const entry: Contribution = { verdict, rule, reason, judge };
    const best = this.best;
    if (!best) this.best = entry;
    else {
      this.matched ??= [best];
      this.matched.push(entry);
      if (outranks(entry, best)) this.best = entry;
    }
  }
}

/** What conditions read for one call; methods, not closures, so building it allocates one object. */
class CallContext implements EvalContext {
  private hits: FlowHit[] | undefined;
  readonly agent: Agent;
  readonly server: string | undefined;
  readonly seen: ReadonlySet<string>;

  constructor(
    readonly call: Call,
    readonly tool: string,
    readonly args: Record<string, unknown>,
    readonly decl: CompiledTool | undefined,
    readonly findings: Finding[],
    private readonly session: SessionState | undefined,
  ) {
    this.agent = call.agent ?? NO_AGENT;
    this.server = call.server;
    this.seen = session?.seen ?? EMPTY_SET;
  }

  flows(): FlowHit[] {
    if (this.hits) return this.hits;
    const hits = this.session?.hasLabelledContent ? this.session.flowsInto(this.args) : [];
    if (this.call.labels) addHostLabels(this.call.labels, this.args, hits);
    this.hits = hits;
    return hits;
  }

  endorsed(text: string, labels: readonly string[]): boolean {
    return this.session?.endorsed(text, labels) ?? false;
  }

  fromValues(text: string, sources: readonly string[]): boolean {
    const session = this.session;
    return session !== undefined && sources.some((source) => session.inValueSet(text, source));
  }

  sessionView(): Record<string, unknown> {
    return this.session?.view() ?? { id: this.call.session ?? "" };
  }

  userInputs(): ReadonlyArray<{ text: string; labels: readonly string[] }> {
    return this.session?.inputs ?? [];
  }
}
const EMPTY_LABELS: string[] = [];

function runChecks(decl: CompiledTool, args: Record<string, unknown>, findings: Finding[]): void {
  for (const { arg, path } of decl.required) {
    if (valueAt(args, path) === undefined) findings.push(missingArg(decl.name, arg));
  }
  for (const check of decl.checks) {
    const before = findings.length;
    if (check.path.length === 1) {
      const value = Object.hasOwn(args, check.arg) ? args[check.arg] : undefined;
      if (value !== undefined) check.check(value, check.arg, findings);
    } else checkAt(args, check.path, 0, check, findings);
    for (let i = before; i < findings.length; i++) findings[i].verdict = decl.onViolation;
  }
}

/** The finding for a `required: true` argument the call does not have; it always denies. */
export function missingArg(tool: string, arg: string): Finding {
  return {
    code: "arg.missing",
    arg,
    message: `\`${tool}\` requires the argument \`${arg}\` and the call does not have it`,
    verdict: "deny",
  };
}

/**
 * Checks every value a nested path reaches, through arrays as conditions read them (a
 * non-numeric segment applies to every element), so `[{url}]` cannot dodge a check on `{url}`;
 * `to.*` checks every element of the list `to`.
 */
function checkAt(
  value: unknown,
  path: readonly string[],
  i: number,
  check: CompiledTool["checks"][number],
  out: Finding[],
): void {
  if (i === path.length) {
    if (value !== undefined) check.check(value, check.arg, out);
  } else if (Array.isArray(value) && !/^\d+$/.test(path[i])) {
    // `list.*` names each element of a list of scalars; any other name looks inside each element.
    const next = path[i] === "*" ? i + 1 : i;
    for (const element of value) checkAt(element, path, next, check, out);
  } else if (value !== null && typeof value === "object" && Object.hasOwn(value, path[i])) {
    checkAt((value as Record<string, unknown>)[path[i]], path, i + 1, check, out);
  }
}

function addHostLabels(
  labels: Record<string, string[]>,
  args: Record<string, unknown>,
  hits: FlowHit[],
): void {
  for (const [arg, names] of Object.entries(labels)) {
    const value = valueAt(args, arg.split("."));
    // A label on an argument the call does not have carries nothing (as `args.<x>: { flows }` reads it).
    if (value === undefined) continue;
    const text = typeof value === "string" ? value : (JSON.stringify(value) ?? "");
    for (const label of names) hits.push({ label, arg, source: "host", text });
  }
}

function dedupeFlows(hits: FlowHit[]): FlowEvidence[] {
  const seen = new Set<string>();
  const out: FlowEvidence[] = [];
  for (const { label, arg, source } of hits) {
    const key = `${label}\0${arg}\0${source}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ label, arg, source });
  }
  return out;
}
