import type { AuditRecord } from "../audit/types.js";
import type { Verdict } from "../core/index.js";

/** One tool call as it was observed, in a trace or an audit record. */
export interface ObservedCall {
  kind: "call";
  tool: string;
  args: Record<string, unknown>;
  /** False when the audit kept only a hash of the arguments (`audit: { args: hash }`). */
  argsKnown: boolean;
  result?: unknown;
  hasResult: boolean;
  server?: string;
  /** The verdict the observing policy gave (audit logs); undefined for traces. */
  verdict?: Verdict;
  rule?: string | null;
  /** `file:line` the call came from. */
  where: string;
}

/** The user's own labelled input (a trace's input line). */
export interface ObservedInput {
  kind: "input";
  value: unknown;
  labels: string[];
}

export type ObservedStep = ObservedCall | ObservedInput;

/** What agents were seen doing: steps by session, in order. Session ids are qualified by their file. */
export interface Observations {
  sessions: Map<string, ObservedStep[]>;
  /** Lines that were neither a step nor a record, as `file:line: why`. */
  skipped: string[];
}

export function emptyObservations(): Observations {
  return { sessions: new Map(), skipped: [] };
}

/** True when the text is an audit log (its first JSON line is a chained record), not a trace. */
export function isAuditLog(text: string): boolean {
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      const value = JSON.parse(line) as Record<string, unknown>;
      return typeof value?.seq === "number" && typeof value?.hash === "string";
    } catch {
      return false;
    }
  }
  return false;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** Adds a `replay` trace: `{session?, tool, args, result?}` and `{session?, input, labels}` lines. Steps marked `attack: true` are skipped. */
export function addTrace(into: Observations, text: string, file: string): void {
  let n = 0;
  for (const line of text.split("\n")) {
    n++;
    if (!line.trim()) continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      into.skipped.push(`${file}:${n}: not JSON`);
      continue;
    }
    if (!isObject(value)) {
      into.skipped.push(`${file}:${n}: not an object`);
      continue;
    }
    const session = `${file}#${typeof value.session === "string" ? value.session : "default"}`;
    const steps = into.sessions.get(session) ?? [];
    into.sessions.set(session, steps);
    if ("input" in value) {
      const labels = Array.isArray(value.labels)
        ? value.labels.filter((l): l is string => typeof l === "string")
        : [];
      steps.push({ kind: "input", value: value.input, labels });
      continue;
    }
    if (value.attack === true) {
      into.skipped.push(`${file}:${n}: an attacker's step (\`attack: true\`)`);
      continue;
    }
    if (typeof value.tool !== "string" || (value.args !== undefined && !isObject(value.args))) {
      into.skipped.push(`${file}:${n}: not a step (\`tool\` and \`args\`)`);
      continue;
    }
    steps.push({
      kind: "call",
      tool: value.tool,
      args: (value.args as Record<string, unknown>) ?? {},
      argsKnown: true,
      result: value.result,
      hasResult: "result" in value,
      server: typeof value.server === "string" ? value.server : undefined,
      where: `${file}:${n}`,
    });
  }
}

/** Adds the decision records of an audit trail (JSONL, SQLite or PostgreSQL sink). */
export function addAuditRecords(into: Observations, records: Iterable<AuditRecord>, file: string): void {
  for (const record of records) {
    if (record.kind !== "decision" || typeof record.tool !== "string") continue;
    const session = `${file}#${record.session ?? "default"}`;
    const steps = into.sessions.get(session) ?? [];
    into.sessions.set(session, steps);
    const argsKnown = isObject(record.args);
    steps.push({
      kind: "call",
      tool: record.tool,
      args: argsKnown ? (record.args as Record<string, unknown>) : {},
      argsKnown,
      hasResult: false,
      server: record.server,
      verdict: record.verdict,
      rule: record.rule,
      where: `${file}#${record.seq}`,
    });
  }
}

/** Every observed call, in session order. */
export function* observedCalls(observations: Observations): Generator<ObservedCall> {
  for (const steps of observations.sessions.values())
    for (const step of steps) if (step.kind === "call") yield step;
}
