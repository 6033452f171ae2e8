import type { Agent, Decision, Verdict } from "../core/index.js";
import type { FlowHit } from "../policy/index.js";
import { addValue, FlowIndex, normalizeFlowText, scanValue } from "../taint/index.js";
import type { SessionState } from "./evaluate.js";
import { valueAt } from "./inspect.js";

export interface SessionOptions {
  id: string;
  agent?: Agent;
  /** What the user asked for, for reviewers and judges. */
  task?: string;
  minMatch?: number;
  labelMinMatch?: Readonly<Record<string, number>>;
  /** Bound on labelled content held for flow detection (bytes). */
  maxTaintBytes?: number;
}

/** A session's report: what was decided, what was spent, what flowed. */
export interface SessionReport {
  session: string;
  agent?: string;
  calls: number;
  verdicts: Record<Verdict, number>;
  tools: Record<string, Record<Verdict, number>>;
  deniedTools: string[];
  spend: number;
  budget?: { max: number; remaining: number };
  labelsSeen: string[];
  flowsBlocked: Array<{ tool: string; rule: string | null; labels: string[] }>;
}

/**
 * One agent run: the labels it has seen, the labelled content it received (for flow detection)
 * and what was decided. Process-local; counters and spend live in the state store.
 */
export class Session implements SessionState {
  readonly id: string;
  readonly agent: Agent;
  readonly task?: string;
  private readonly seenLabels = new Set<string>();
  private readonly index: FlowIndex;
  private outputs = 0;
  private readonly verdicts: Record<Verdict, number> = { allow: 0, flag: 0, ask: 0, deny: 0 };
  private readonly byTool = new Map<string, Record<Verdict, number>>();
  private readonly blocked: SessionReport["flowsBlocked"] = [];
  /** Normalised values (leaves and their tokens) from the outputs of trusted value-set tools. */
  private readonly valueSets = new Map<string, Set<string>>();
  private valueCount = 0;
  spend = 0;

  constructor(options: SessionOptions) {
    this.id = options.id;
    this.agent = options.agent ?? {};
    this.task = options.task;
    this.index = new FlowIndex({
      minMatch: options.minMatch,
      labelMinMatch: { ...options.labelMinMatch },
      maxBytes: options.maxTaintBytes,
    });
  }

  get seen(): ReadonlySet<string> {
    return this.seenLabels;
  }

  get hasLabelledContent(): boolean {
    return this.index.bytes > 0 || this.index.overflowed;
  }

  /** Records labelled input that is not a tool output: the user's request, an uploaded document. */
  input(value: unknown, options: { labels: readonly string[] }): void {
    this.addContent(value, options.labels, `input#${++this.outputs}`);
    // What the user typed is also a value set per label (`from: [user]`), down to short words.
    for (const label of options.labels) this.recordValues(label, value, MIN_INPUT_WORD);
  }

  /** Records a tool's output under its labels; returns the source id later flows name. */
  recordOutput(tool: string, output: unknown, labels: readonly string[]): string {
    const source = `${tool}#${++this.outputs}`;
    this.addContent(output, labels, source);
    return source;
  }

  /**
   * Records the values of a trusted value-set tool's output (`from: [tool]`): every string or
   * number leaf, and for strings also their words of at least `minWord` characters (an address
   * inside "Alice <a@x.com>"). Past MAX_VALUES, nothing more is trusted, which only ever makes
   * `from` stricter.
   */
  recordValues(source: string, output: unknown, minWord = MIN_WORD): void {
    let set = this.valueSets.get(source);
    if (!set) this.valueSets.set(source, (set = new Set()));
    const target = set;
    const add = (text: string) => {
      if (this.valueCount >= MAX_VALUES) return;
      const normal = normalizeFlowText(text);
      if (normal.length && !target.has(normal)) {
        target.add(normal);
        this.valueCount++;
      }
    };
    visitLeaves(output, 0, (leaf) => {
      add(leaf);
      for (const word of leaf.split(WORD_SEPARATORS)) if (word.length >= minWord && word !== leaf) add(word);
    });
  }

  /** Whether `text` is a value of the set (a tool's outputs, or inputs with that label). */
  inValueSet(text: string, source: string): boolean {
    const set = this.valueSets.get(source);
    return set?.has(normalizeFlowText(text)) === true;
  }

  private addContent(value: unknown, labels: readonly string[], source: string): void {
    if (!labels.length) return;
    for (const label of labels) this.seenLabels.add(label);
    // Leaves are recorded as separate parts (no JSON escaping between them); a value too large
    // or too deep to record marks the index overflowed, which fails closed.
    if (typeof value === "string") this.index.add(value, labels, source);
    else addValue(this.index, value, labels, source);
  }

  flowsInto(args: Record<string, unknown>): FlowHit[] {
    const found: Array<{ label: string; source: string; arg: string }> = [];
    // Each argument's value is scanned; its name is the tool's parameter, not content.
    for (const key of Object.keys(args)) {
      if (!scanValue(this.index, args[key], key, found)) {
        // Too large or deep to inspect fully: every label seen may be in it (fail-closed).
        for (const label of this.seenLabels) found.push({ label, source: "uninspected", arg: key });
      }
    }
    return found.map((hit) => {
      const leaf = valueAt(args, hit.arg.split("."));
      return { ...hit, text: typeof leaf === "string" ? leaf : safeJson(leaf) };
    });
  }

  /** `tool:<name>` labels are trusted value sets (exact values); others are labelled content that holds the whole text. */
  endorsed(text: string, labels: readonly string[]): boolean {
    return labels.some((label) =>
      label.startsWith("tool:")
        ? this.inValueSet(text, label.slice(5))
        : this.index.containsWhole(text, label),
    );
  }

  view(): Record<string, unknown> {
    return { id: this.id, seen: [...this.seenLabels], calls: this.total(), task: this.task ?? "" };
  }

  /** Counts a decision for the report. */
  note(decision: Decision): void {
    const tool = decision.tool ?? "?";
    this.verdicts[decision.verdict]++;
    let counts = this.byTool.get(tool);
    if (!counts) this.byTool.set(tool, (counts = { allow: 0, flag: 0, ask: 0, deny: 0 }));
    counts[decision.verdict]++;
    if (decision.verdict === "deny" && decision.labels.length) {
      this.blocked.push({ tool, rule: decision.rule, labels: decision.labels });
    }
  }

  report(budget?: { max: number }): SessionReport {
    return {
      session: this.id,
      agent: typeof this.agent.id === "string" ? this.agent.id : undefined,
      calls: this.total(),
      verdicts: { ...this.verdicts },
      tools: Object.fromEntries(this.byTool),
      deniedTools: [...this.byTool].filter(([, v]) => v.deny > 0).map(([tool]) => tool),
      spend: this.spend,
      budget: budget && { max: budget.max, remaining: Math.max(0, budget.max - this.spend) },
      labelsSeen: [...this.seenLabels],
      flowsBlocked: [...this.blocked],
    };
  }

  private total(): number {
    return this.verdicts.allow + this.verdicts.flag + this.verdicts.ask + this.verdicts.deny;
  }
}

const MAX_VALUES = 200_000;
/** Shorter words inside a value (an IBAN's 4-digit groups) are not values of their own. */
const MIN_WORD = 8;
/** Words of the user's own input count down to this length (names, short codes). */
const MIN_INPUT_WORD = 3;
const WORD_SEPARATORS = /[\s,;<>()[\]{}"'|]+/;

function visitLeaves(value: unknown, depth: number, visit: (text: string) => void): void {
  if (typeof value === "string") visit(value);
  else if (typeof value === "number" && Number.isFinite(value)) visit(String(value));
  else if (depth < 32 && value !== null && typeof value === "object") {
    for (const item of Array.isArray(value) ? value : Object.values(value))
      visitLeaves(item, depth + 1, visit);
  }
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
