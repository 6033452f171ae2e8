import type { Agent, Call, Finding, RiskLevel } from "../core/index.js";

/** What conditions read of the called tool's declaration (the compiled `tools.<name>`). */
export interface ToolFacts {
  readonly sink?: string;
  readonly risk?: RiskLevel;
}

/** A label that reached an argument: which label, in which argument leaf, from which earlier output. */
export interface FlowHit {
  label: string;
  /** Dotted path of the argument leaf, e.g. `to` or `body.parts.0`. */
  arg: string;
  source: string;
  /** The leaf's text, for `unless` endorsement checks. */
  text: string;
}

/** What conditions read while one call is decided. Built by the gateway, read-only to rules. */
export interface EvalContext {
  call: Call;
  tool: string;
  args: Record<string, unknown>;
  agent: Agent;
  server: string | undefined;
  decl: ToolFacts | undefined;
  findings: Finding[];
  /** Labels the session has received so far. */
  seen: ReadonlySet<string>;
  /** Labels that flowed into the arguments; computed on first use, since it scans the arguments. */
  flows(): readonly FlowHit[];
  /** True when the whole `text` occurs in content labelled with one of `labels` (endorsement). */
  endorsed(text: string, labels: readonly string[]): boolean;
  /** True when `text` is a value from one of these sources: a tool's outputs or inputs with that label (`from`). */
  fromValues(text: string, sources: readonly string[]): boolean;
  /** The session as CEL sees it (`session.id`, `session.seen`, `session.calls`, `session.task`, `session.inputs`). */
  sessionView(): Record<string, unknown>;
  /** Labelled input recorded on the session (the user's request), for `user_asked`. */
  userInputs(): ReadonlyArray<{ text: string; labels: readonly string[] }>;
}
