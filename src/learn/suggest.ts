import { Document, isMap, isScalar, isSeq, type Node } from "yaml";
import type { ToolAnnotations } from "../adapters/mcp/risk.js";
import { CONSTRAINT_KINDS } from "../analyzers/index.js";
import { canonicalJson } from "../core/canonical.js";
import type { Decision } from "../core/index.js";
import { Warden } from "../gateway/index.js";
import { compilePolicyObject } from "../policy/index.js";
import type { CompiledPolicy } from "../policy/index.js";
import { learnConstraint } from "./infer.js";
import type { ObservedCall, ObservedStep, Observations } from "./observations.js";
import { observedCalls } from "./observations.js";

export interface SuggestOptions {
  /** The policy's `name`; default `suggested`. */
  name?: string;
  /** Also learn from calls the observing policy denied (default: they are listed, not learned). */
  includeDenied?: boolean;
  /** Annotations by tool name, from the MCP servers the calls went to. */
  annotations?: Readonly<Record<string, ToolAnnotations>>;
  /** Most `tests:` written (distinct calls); default 400. */
  maxTests?: number;
  /** Admit values like those seen, not only those (see `LearnOptions.generalize`); every widening is noted. */
  generalize?: boolean;
}

/** A learned policy: the document, the notes written beside its parts, and the calls it was not learned from. */
export interface Suggestion {
  /** The policy as a plain object (valid policy, version 1). */
  policy: Record<string, unknown>;
  /** The policy as commented YAML. */
  yaml: string;
  /** Calls learned from, and calls seen but not learned from (denied by the observing policy). */
  learned: number;
  notLearned: ObservedCall[];
  /** Constraints, rules and detectors dropped because an observed call would have been refused by them. */
  relaxed: string[];
  compiled: CompiledPolicy;
}

type Path = Array<string | number>;

const SEND = /^(send|post|share|invite|upload|publish|email|reply|forward|message|notify|tweet|comment)/i;
const WRITE =
  /^(write|create|update|delete|remove|append|schedule|reserve|book|add|set|put|patch|pay|transfer|refund|execute|run|move|rename|insert|drop|cancel|reschedule)/i;
const SEND_ANYWHERE = /(^|_)(send|post|share|invite|email|upload|publish)(_|$)/i;

/**
 * Writes a least-privilege policy from what agents were seen doing: the tools they used on the
 * allow list (everything else falls to `default: deny`), per argument the narrowest constraint
 * that admits every observed value, labels and sinks, per-session caps on sending and writing,
 * and the observed calls as `tests:`. The policy is then replayed against the observations and
 * any part that would refuse an observed call is dropped (and said so), so `toolwarden test`
 * passes on it by construction.
 */
export async function suggestPolicy(
  observations: Observations,
  options: SuggestOptions = {},
): Promise<Suggestion> {
  // The SQL probe in `learnConstraint` is compiled synchronously: load the PostgreSQL parser first.
  await CONSTRAINT_KINDS.get("sql")?.load?.({});
  const notes = new Map<string, string[]>();
  const note = (path: Path, text: string) => {
    const key = JSON.stringify(path);
    notes.set(key, [...(notes.get(key) ?? []), text]);
  };
  const learnedFrom = (call: ObservedCall) => options.includeDenied || call.verdict !== "deny";
  const all = [...observedCalls(observations)];
  const learned = all.filter(learnedFrom);
  const notLearned = all.filter((call) => !learnedFrom(call));
  const annotations = options.annotations ?? {};

  const byTool = new Map<string, ObservedCall[]>();
  for (const call of learned) byTool.set(call.tool, [...(byTool.get(call.tool) ?? []), call]);
  const toolNames = [...byTool.keys()].sort();

  const tools: Record<string, Record<string, unknown>> = {};
  const sinkTools: string[] = [];
  const untrustedTools: string[] = [];
  for (const name of toolNames) {
    const calls = byTool.get(name)!;
    const decl: Record<string, unknown> = {};
    const hints = annotations[name];
    const known = calls.filter((c) => c.argsKnown);
    const leaves = collectLeaves(known);
    const args: Record<string, unknown> = {};
    let hasUrl = false;
    for (const [path, { values, count, conflict }] of [...leaves].sort(([a], [b]) => a.localeCompare(b))) {
      if (conflict) {
        note(["tools", name], `${path}: seen both as a value and as an object: no constraint learned`);
        continue;
      }
      const result = learnConstraint(path, values, count, { generalize: options.generalize });
      if (result.constraint) {
        args[path] = result.constraint;
        if ("url" in result.constraint) hasUrl = true;
        note(["tools", name, "args", path], result.note);
      } else note(["tools", name], result.note);
    }
    if (known.length < calls.length)
      note(
        ["tools", name],
        `${calls.length - known.length} of ${calls.length} calls were audited without arguments (audit.args: hash): not learned from`,
      );
    // Labels: what comes from outside. MCP's openWorldHint says so; so does a URL argument (web content).
    if (hints?.openWorldHint === true || hasUrl) {
      decl.produces = ["untrusted"];
      untrustedTools.push(name);
      note(
        ["tools", name, "produces"],
        hints?.openWorldHint === true
          ? "the server marks it open-world (openWorldHint)"
          : "it fetches URLs: its output is web content",
      );
    }
    const sink = sinkKind(name, hints);
    if (sink) {
      decl.sink = sink.kind;
      sinkTools.push(name);
      note(["tools", name, "sink"], sink.why);
    }
    if (hints?.destructiveHint === true && hints.readOnlyHint !== true) {
      decl.risk = "high";
      note(["tools", name, "risk"], "the server marks it destructive (destructiveHint)");
    }
    if (Object.keys(args).length) decl.args = args;
    tools[name] = decl;
    note(
      ["tools", name],
      `${name}: ${calls.length} call${calls.length === 1 ? "" : "s"} in ${new Set(calls.map((c) => sessionOf(c, observations))).size} session(s)`,
    );
  }

  const policy: Record<string, unknown> = {
    version: 1,
    name: options.name ?? "suggested",
    default: "deny",
    fail: "closed",
    allow: toolNames,
  };
  note(["allow"], `the ${toolNames.length} tools the agents used; anything else is denied by default`);
  const declared = Object.fromEntries(Object.entries(tools).filter(([, decl]) => Object.keys(decl).length));
  if (Object.keys(declared).length) policy.tools = declared;
  policy.detect = { secrets: "deny" };
  note(["detect"], "no observed argument carried a credential");

  const rules: Array<Record<string, unknown>> = [];
  const sinks = [...new Set(sinkTools.map((t) => tools[t].sink as string))].sort();
  const withResults = learned.some((c) => c.hasResult);
  if (untrustedTools.length && sinks.length) {
    if (withResults) {
      rules.push({
        name: "untrusted-into-sinks",
        when: { sink: sinks, flows: ["untrusted"] },
        verdict: "ask",
        message: "Content from outside reached a tool that sends or writes; no observed call did this.",
      });
      note(
        ["rules", 0],
        `no observed call carried output of ${untrustedTools.join(", ")} into ${sinkTools.join(", ")}`,
      );
    } else {
      note(
        ["tools"],
        "the observations hold no tool outputs (audit logs do not), so no flow rule was learned",
      );
    }
  }
  if (rules.length) policy.rules = rules;

  const limits: Array<Record<string, unknown>> = [];
  for (const tool of sinkTools) {
    const perSession = new Map<string, number>();
    for (const call of byTool.get(tool)!) {
      const session = sessionOf(call, observations);
      perSession.set(session, (perSession.get(session) ?? 0) + 1);
    }
    const max = Math.max(...perSession.values());
    limits.push({ name: `${tool}-per-session`, when: { tool }, max, per: "session" });
    note(
      ["limits", limits.length - 1],
      `${tool}: at most ${max} call${max === 1 ? "" : "s"} in one of ${perSession.size} observed session(s)`,
    );
  }
  if (limits.length) policy.limits = limits;

  const relaxed = relax(policy, observations, learnedFrom, note);
  const tests = testsFor(policy, observations, learnedFrom, options.maxTests ?? 400, note);
  if (tests.length) policy.tests = tests;
  const compiled = compilePolicyObject(policy, `${String(policy.name)}.yaml`);

  const header = [
    `Suggested by \`toolwarden suggest\` from ${all.length} observed call${all.length === 1 ? "" : "s"} in ${observations.sessions.size} session(s); learned from ${learned.length}.`,
    "Review it before enforcing: every constraint admits what was seen and little more.",
  ];
  if (notLearned.length) {
    header.push(`Not learned from (the observing policy denied them): ${notLearned.length}`);
    for (const call of notLearned.slice(0, 20))
      header.push(`  ${call.where} ${call.tool}${call.rule ? ` (${call.rule})` : ""}`);
    if (notLearned.length > 20) header.push(`  ... and ${notLearned.length - 20} more`);
  }
  for (const line of relaxed) header.push(`Relaxed: ${line}`);
  return {
    policy,
    yaml: render(policy, notes, header),
    learned: learned.length,
    notLearned,
    relaxed,
    compiled,
  };
}

function sessionOf(call: ObservedCall, observations: Observations): string {
  for (const [id, steps] of observations.sessions) if (steps.includes(call)) return id;
  return "";
}

function sinkKind(
  name: string,
  hints: ToolAnnotations | undefined,
): { kind: string; why: string } | undefined {
  if (SEND.test(name) || SEND_ANYWHERE.test(name)) return { kind: "external", why: "its name says it sends" };
  if (hints?.readOnlyHint === true) return undefined;
  if (hints?.destructiveHint === true)
    return { kind: "write", why: "the server marks it destructive (destructiveHint)" };
  if (WRITE.test(name)) return { kind: "write", why: "its name says it writes or changes something" };
  if (hints?.readOnlyHint === false)
    return { kind: "write", why: "the server marks it not read-only (readOnlyHint: false)" };
  return undefined;
}

interface Leaf {
  values: unknown[];
  count: number;
  conflict: boolean;
}

/**
 * The scalar leaves of the calls' arguments by dotted path, as constraints address them: objects
 * by key, lists of objects through their elements (`items.url`), lists of scalars as `list.*`.
 */
function collectLeaves(calls: ObservedCall[]): Map<string, Leaf> {
  const leaves = new Map<string, Leaf>();
  const objects = new Set<string>();
  for (const call of calls) {
    const touched = new Set<string>();
    const add = (path: string, value: unknown) => {
      const leaf = leaves.get(path) ?? { values: [], count: 0, conflict: false };
      leaf.values.push(value);
      if (!touched.has(path)) {
        leaf.count++;
        touched.add(path);
      }
      leaves.set(path, leaf);
    };
    const walk = (value: unknown, path: string, depth: number) => {
      if (value === undefined) return;
      if (Array.isArray(value)) {
        if (
          value.length &&
          value.every((v) => v !== null && typeof v === "object" && !Array.isArray(v)) &&
          depth < 4
        ) {
          objects.add(path);
          for (const element of value) walk(element, path, depth + 1);
        } else if (value.every((v) => v === null || typeof v !== "object")) {
          objects.add(path);
          for (const element of value) add(`${path}.*`, element);
        } else add(path, value);
        return;
      }
      if (value !== null && typeof value === "object") {
        if (depth >= 4 || Object.keys(value).length === 0) return add(path, value);
        objects.add(path);
        for (const [key, item] of Object.entries(value)) {
          if (key.includes(".") || key === "*" || /^\d+$/.test(key)) continue;
          walk(item, path ? `${path}.${key}` : key, depth + 1);
        }
        return;
      }
      add(path, value);
    };
    for (const [key, value] of Object.entries(call.args)) {
      if (key.includes(".") || key === "*") continue;
      walk(value, key, 1);
    }
  }
  for (const [path, leaf] of leaves) if (objects.has(path)) leaf.conflict = true;
  return leaves;
}

/**
 * Replays the observations through the policy; a learned call that is not allowed names what
 * refused it (a constraint, a rule, a limit, a detector) and that part is dropped. Repeats until
 * every learned call is allowed.
 */
function relax(
  policy: Record<string, unknown>,
  observations: Observations,
  learnedFrom: (call: ObservedCall) => boolean,
  note: (path: Path, text: string) => void,
): string[] {
  const relaxed: string[] = [];
  for (let round = 0; round < 20; round++) {
    const refused = replayAll(compilePolicyObject(policy), observations, learnedFrom);
    if (!refused.length) return relaxed;
    const { call, decision } = refused[0];
    const what = dropCause(policy, call, decision);
    if (!what) {
      relaxed.push(`${call.where} ${call.tool} is still refused (${decision.rule}: ${decision.reason})`);
      return relaxed;
    }
    relaxed.push(`${what}: it refused ${call.where} ${call.tool} (${decision.reason})`);
    note(["allow"], `relaxed: ${what}`);
  }
  return relaxed;
}

async function noop(): Promise<void> {}

/**
 * Replays every observed session through `compiled`, each through its own Warden, and returns the
 * decision on every call. Outputs label later calls only when their call was allowed. `max` limits
 * are counted per session for the tools they name (their other conditions are not read); rate
 * limits and budgets are not counted (a replay has no clock).
 */
export function replayObservations(
  compiled: CompiledPolicy,
  observations: Observations,
): Array<{ call: ObservedCall; decision: Decision }> {
  const out: Array<{ call: ObservedCall; decision: Decision }> = [];
  for (const steps of observations.sessions.values()) {
    const warden = new Warden(compiled);
    const session = warden.session({ id: "s" });
    const counts = new Map<string, number>();
    for (const step of steps) {
      if (step.kind === "input") {
        session.input(step.value, { labels: step.labels });
        continue;
      }
      const call = { tool: step.tool, args: step.args, session: "s", server: step.server };
      let decision = warden.evaluate(call);
      for (const limit of compiled.limits) {
        if (limit.windowMs !== 0 || !(limit.toolMatch?.(step.tool) ?? true)) continue;
        const n = (counts.get(limit.name) ?? 0) + (decision.verdict === "deny" ? 0 : 1);
        counts.set(limit.name, n);
        if (n > limit.limit && decision.verdict !== "deny")
          decision = {
            ...decision,
            verdict: limit.verdict,
            rule: limit.name,
            reason: `limit \`${limit.name}\` reached: ${limit.describe}`,
            findings: [],
          };
      }
      const runs = decision.verdict === "allow" || decision.verdict === "flag";
      if (runs && step.hasResult) warden.recordOutput(call, step.result, session);
      out.push({ call: step, decision });
    }
    void warden.close().catch(noop);
  }
  return out;
}

/** Learned calls the policy does not allow. */
function replayAll(
  compiled: CompiledPolicy,
  observations: Observations,
  learnedFrom: (call: ObservedCall) => boolean,
): Array<{ call: ObservedCall; decision: Decision }> {
  return replayObservations(compiled, observations).filter(
    ({ call, decision }) =>
      decision.verdict !== "allow" && decision.verdict !== "flag" && learnedFrom(call) && call.argsKnown,
  );
}

function dropCause(
  policy: Record<string, unknown>,
  call: ObservedCall,
  decision: Decision,
): string | undefined {
  const tools = (policy.tools ?? {}) as Record<string, Record<string, unknown>>;
  const finding = decision.findings.find((f) => f.code === decision.rule) ?? decision.findings[0];
  if (finding?.code.startsWith("secret.") && policy.detect) {
    delete policy.detect;
    return "detect: secrets";
  }
  const args = tools[call.tool]?.args as Record<string, unknown> | undefined;
  if (finding?.arg !== undefined && args) {
    const key = Object.keys(args).find(
      (k) => k === finding.arg || finding.arg!.startsWith(`${k}.`) || k.replace(/\.\*$/, "") === finding.arg,
    );
    if (key) {
      delete args[key];
      if (!Object.keys(args).length) delete tools[call.tool].args;
      return `tools.${call.tool}.args.${key}`;
    }
  }
  const rules = (policy.rules ?? []) as Array<{ name: string }>;
  const rule = rules.findIndex((r) => r.name === decision.rule);
  if (rule >= 0) {
    rules.splice(rule, 1);
    if (!rules.length) delete policy.rules;
    return `rule ${decision.rule}`;
  }
  const limits = (policy.limits ?? []) as Array<{ name: string }>;
  const limit = limits.findIndex((l) => l.name === decision.rule);
  if (limit >= 0) {
    limits.splice(limit, 1);
    if (!limits.length) delete policy.limits;
    return `limit ${decision.rule}`;
  }
  return undefined;
}

/** The learned calls as tests (distinct calls once each); with flow rules, each test replays its session's earlier steps. */
function testsFor(
  policy: Record<string, unknown>,
  observations: Observations,
  learnedFrom: (call: ObservedCall) => boolean,
  max: number,
  note: (path: Path, text: string) => void,
): Array<Record<string, unknown>> {
  const flows = Array.isArray(policy.rules) && policy.rules.length > 0;
  const limited = Array.isArray(policy.limits) && policy.limits.length > 0;
  const tests: Array<Record<string, unknown>> = [];
  const seen = new Set<string>();
  let skipped = 0;
  for (const steps of observations.sessions.values()) {
    for (const [i, step] of steps.entries()) {
      if (step.kind !== "call" || !learnedFrom(step) || !step.argsKnown) continue;
      const key = canonicalJson({ tool: step.tool, args: step.args });
      if (seen.has(key)) continue;
      seen.add(key);
      if (tests.length >= max) {
        skipped++;
        continue;
      }
      const test: Record<string, unknown> = { name: `observed ${step.where}` };
      if (flows || limited) {
        const earlier = steps.slice(0, i).flatMap((s): Array<Record<string, unknown>> => priorStep(s, flows));
        if (earlier.length) test.steps = earlier;
      }
      test.call = { tool: step.tool, args: step.args };
      test.expect = "allow";
      tests.push(test);
    }
  }
  if (skipped) note(["tests"], `${skipped} more distinct observed calls are not listed (at most ${max})`);
  else if (tests.length)
    note(
      ["tests"],
      `every distinct observed call the policy was learned from (${tests.length}): \`toolwarden test\` proves they are allowed`,
    );
  return tests;
}

function priorStep(step: ObservedStep, flows: boolean): Array<Record<string, unknown>> {
  if (step.kind === "input") return flows ? [{ input: step.value, labels: step.labels }] : [];
  if (!step.argsKnown) return [];
  const out: Record<string, unknown> = { tool: step.tool, args: step.args };
  if (flows && step.hasResult) out.result = step.result;
  return [out];
}

/** The policy as YAML with each note as a comment above the part it explains. */
function render(policy: Record<string, unknown>, notes: Map<string, string[]>, header: string[]): string {
  const doc = new Document(policy, { aliasDuplicateObjects: false });
  doc.commentBefore = header.map((line) => ` ${line}`).join("\n");
  for (const [key, lines] of notes) {
    const path = JSON.parse(key) as Path;
    const text = lines.map((line) => ` ${line}`).join("\n");
    // Where the part was dropped (a tool with nothing to declare), the note goes on its nearest parent, else the allow list.
    let at = path;
    while (!commentAt(doc, at, text) && at.length > 0) at = at.length > 1 ? at.slice(0, -1) : [];
    if (at.length === 0) commentAt(doc, ["allow"], text);
  }
  const flow = (node: unknown) => {
    if (isMap(node) || isSeq(node)) (node as { flow?: boolean }).flow = true;
  };
  const tools = doc.get("tools", true);
  if (isMap(tools)) {
    for (const pair of tools.items) {
      const decl = pair.value;
      if (!isMap(decl)) continue;
      flow(decl.get("produces", true));
      const args = decl.get("args", true);
      if (isMap(args)) for (const arg of args.items) flow(arg.value);
    }
  }
  const limits = doc.get("limits", true);
  if (isSeq(limits)) for (const item of limits.items) flow(item);
  const tests = doc.get("tests", true);
  if (isSeq(tests)) {
    for (const item of tests.items) {
      if (!isMap(item)) continue;
      flow(item.get("call", true));
      const steps = item.get("steps", true);
      if (isSeq(steps)) for (const s of steps.items) flow(s);
    }
  }
  flow(doc.get("allow", true));
  flow(doc.get("detect", true));
  return doc.toString({ lineWidth: 0 });
}

function commentAt(doc: Document, path: Path, text: string): boolean {
  const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
  const last = path.at(-1);
  if (isMap(parent)) {
    const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === last);
    if (!pair || !isScalar(pair.key)) return false;
    const keyNode = pair.key as Node & { commentBefore?: string | null };
    keyNode.commentBefore = keyNode.commentBefore ? `${keyNode.commentBefore}\n${text}` : text;
    return true;
  }
  if (isSeq(parent) && typeof last === "number") {
    const item = parent.items[last] as (Node & { commentBefore?: string | null }) | undefined;
    if (!item) return false;
    item.commentBefore = item.commentBefore ? `${item.commentBefore}\n${text}` : text;
    return true;
  }
  return false;
}
