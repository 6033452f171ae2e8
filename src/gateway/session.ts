import type { Agent, Decision, Verdict } from "../core/index.js";
import type { FlowHit } from "../policy/index.js";
import { contentParts, FlowIndex, type FlowIndexOptions, normalizeFlowText, scanValue } from "../taint/index.js";
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

/**
 * One write to a session's log in the state store; every replica rebuilds the same session from
 * the log. `c`: labelled content (its parts, as `contentParts` gives them; `x` when the value could
 * not be walked completely, which fails closed); `v`: normalised values of a trusted value set;
 * `o`: the store's overflow mark (the session passed its byte bound: flow checks fail closed).
 */
export type SessionEntry =
  | { k: "c"; s: string; l: string[]; p: string[]; x?: 1 }
  | { k: "v"; s: string; v: string[] }
  | { k: "p"; s: string }
  | { k: "o" };

/** Where a session's writes go (the Warden's session manager puts them in the store). */
export type SessionWriter = (session: Session, entries: SessionEntry[]) => void;

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
 * One agent run: the labels it has seen, the labelled content it received (for flow detection),
 * its trusted value sets and what was decided. What it received is a log of entries in the state
 * store (a Warden's writer appends them; `apply` replays them here), so every replica and every
 * restart rebuilds the same session; without a writer the session records into itself.
 */
export class Session implements SessionState {
  readonly id: string;
  agent: Agent;
  task?: string;
  /** The agent that owns the session in the store (the first to open it). */
  owner?: string;
  /** The last log entry applied. */
  seq = 0;
  /** The plan declared for this session (its calls must follow it), on whichever replica declared it. */
  plan?: string;
  /** Set by the Warden that holds the session: where `input` and `recordOutput` write. */
  writer?: SessionWriter;
  private readonly indexOptions: FlowIndexOptions;
  private seenLabels = new Set<string>();
  /** Made on the first labelled content (or overflow mark): most sessions never get any. */
  private flowIndex: FlowIndex | undefined;
  private verdicts: Record<Verdict, number> = { allow: 0, flag: 0, ask: 0, deny: 0 };
  private byTool = new Map<string, Record<Verdict, number>>();
  private blocked: SessionReport["flowsBlocked"] = [];
  /** Normalised values (leaves and their tokens) from the outputs of trusted value-set tools. */
  private valueSets = new Map<string, Set<string>>();
  private valueCount = 0;
  /** What was recorded as input (the user's request, uploads), for `user_asked` and CEL's `session.inputs`. */
  private recordedInputs: Array<{ text: string; labels: string[] }> = [];
  spend = 0;

  constructor(options: SessionOptions) {
    this.id = options.id;
    this.agent = options.agent ?? {};
    this.task = options.task;
    this.indexOptions = {
      minMatch: options.minMatch,
      labelMinMatch: { ...options.labelMinMatch },
      maxBytes: options.maxTaintBytes,
    };
    // Bad options fail here, as when the index was made with the session, not at its first content.
    FlowIndex.checkOptions(this.indexOptions);
  }

  /**
   * The session's flow index, made when first needed: making one (its tables and a random hash
   * base) was most of the cost of opening a session, and an empty one answers nothing.
   */
  private get index(): FlowIndex {
    this.flowIndex ??= new FlowIndex(this.indexOptions);
    return this.flowIndex;
  }

  /** Forgets everything received (the store no longer holds the session: it expired or was ended). */
  reset(): void {
    this.seq = 0;
    this.owner = undefined;
    this.plan = undefined;
    this.seenLabels = new Set();
    this.flowIndex = undefined;
    this.verdicts = { allow: 0, flag: 0, ask: 0, deny: 0 };
    this.byTool = new Map();
    this.blocked = [];
    this.valueSets = new Map();
    this.valueCount = 0;
    this.recordedInputs = [];
    this.spend = 0;
  }

  /** Replays one log entry (number `seq`) into the session. */
  apply(entry: SessionEntry, seq: number): void {
    this.seq = seq;
    if (entry.k === "c") {
      for (const label of entry.l) this.seenLabels.add(label);
      if (entry.s === INPUT_SOURCE && this.recordedInputs.length < MAX_INPUTS)
        this.recordedInputs.push({ text: entry.p.join("\n").slice(0, MAX_INPUT_TEXT), labels: [...entry.l] });
      const source = `${entry.s}#${seq}`;
      this.index.add(entry.p.length === 1 ? entry.p[0] : entry.p, entry.l, source);
      if (entry.x) this.index.markOverflowed();
    } else if (entry.k === "v") {
      let set = this.valueSets.get(entry.s);
      if (!set) this.valueSets.set(entry.s, (set = new Set()));
      for (const value of entry.v) {
        if (this.valueCount >= MAX_VALUES) break;
        if (!set.has(value)) {
          set.add(value);
          this.valueCount++;
        }
      }
    } else if (entry.k === "p") {
      this.plan = entry.s || undefined;
    } else {
      // The store's byte bound was passed: answer every flow check conservatively from now on.
      this.index.markOverflowed();
    }
  }

  private write(entries: SessionEntry[]): void {
    if (!entries.length) return;
    if (this.writer) this.writer(this, entries);
    else for (const entry of entries) this.apply(entry, this.seq + 1);
  }

  get seen(): ReadonlySet<string> {
    return this.seenLabels;
  }

  get hasLabelledContent(): boolean {
    const index = this.flowIndex;
    return index !== undefined && (index.bytes > 0 || index.overflowed);
  }

  /** Records labelled input that is not a tool output: the user's request, an uploaded document. */
  input(value: unknown, options: { labels: readonly string[] }): void {
    const entries: SessionEntry[] = [];
    const content = contentEntry(INPUT_SOURCE, value, options.labels);
    if (content) entries.push(content);
    // What the user typed is also a value set per label (`from: [user]`): the values in it as
    // people write them (numbers, addresses, IBANs, names, quoted phrases, words of 3+ characters);
    // for `match: value` (set `=<label>`) the same tokens.
    for (const label of options.labels) {
      const tokens: string[] = [];
      visitLeaves(value, 0, (leaf) => tokens.push(...inputTokens(leaf)));
      entries.push(normalEntry(label, tokens), normalEntry(`=${label}`, tokens));
    }
    this.write(entries);
  }

  /** Records a tool's output under its labels (later flows name it `<tool>#<n>`). */
  recordOutput(tool: string, output: unknown, labels: readonly string[]): void {
    const content = contentEntry(tool, output, labels);
    if (content) this.write([content]);
  }

  /** The log entries that `recordOutput` and `recordValues` would write, for one atomic write of several. */
  static entries(
    parts: ReadonlyArray<{ source: string; value: unknown; labels?: readonly string[]; values?: boolean }>,
  ): SessionEntry[] {
    const out: SessionEntry[] = [];
    for (const part of parts) {
      if (part.values) out.push(...valuesEntries(part.source, part.value, MIN_WORD));
      else {
        const content = contentEntry(part.source, part.value, part.labels ?? []);
        if (content) out.push(content);
      }
    }
    return out;
  }

  /** Writes several entries at once (one atomic append in the store). */
  record(entries: SessionEntry[]): void {
    this.write(entries);
  }

  /**
   * Records the values of a trusted value-set tool's output (`from: [tool]`). Every string or
   * number leaf and every object key is a whole value (set `=<source>`, for `match: value`); word
   * mode (set `<source>`) also takes each line of a leaf and its words of at least `minWord`
   * characters (an address inside "Alice <a@x.com>"). Past MAX_VALUES, nothing more is trusted,
   * which only ever makes `from` stricter.
   */
  recordValues(source: string, output: unknown, minWord = MIN_WORD): void {
    this.write(valuesEntries(source, output, minWord));
  }

  /** Records the values an allowed call passed (`from: ["args:<tool>.<path>"]`), whole and by word. */
  recordArgs(tool: string, args: Record<string, unknown> | undefined, paths: readonly string[]): void {
    const entries: SessionEntry[] = [];
    for (const path of paths) {
      const values = valuesAt(args ?? {}, path.split(".")).filter((value) => value !== undefined);
      if (values.length) entries.push(...valuesEntries(`args:${tool}.${path}`, values, MIN_WORD));
    }
    this.write(entries);
  }

  /** Whether `text` is a value of the set (a tool's outputs, or inputs with that label). */
  inValueSet(text: string, source: string): boolean {
    const set = this.valueSets.get(source);
    return set?.has(normalizeFlowText(text)) === true;
  }

  /** Counts of the report as this process saw them (the store's counters are in `Warden.sessionReport`). */
  get counts(): { verdicts: Record<Verdict, number>; blocked: number } {
    return { verdicts: { ...this.verdicts }, blocked: this.blocked.length };
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
        : this.flowIndex?.containsWhole(text, label) === true,
    );
  }

  /** The labelled inputs recorded so far (each at most MAX_INPUT_TEXT characters, the first MAX_INPUTS). */
  get inputs(): ReadonlyArray<{ text: string; labels: readonly string[] }> {
    return this.recordedInputs;
  }

  view(): Record<string, unknown> {
    return {
      id: this.id,
      seen: [...this.seenLabels],
      calls: this.total(),
      task: this.task ?? "",
      inputs: this.recordedInputs.map((input) => ({ text: input.text, labels: [...input.labels] })),
    };
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

/**
 * The content entry for a value under `labels` (none without labels). Leaves are separate parts
 * (no JSON escaping between them); a value too large or too deep to walk is marked `x`, which
 * fails closed wherever the entry is replayed.
 */
function contentEntry(source: string, value: unknown, labels: readonly string[]): SessionEntry | undefined {
  if (!labels.length) return undefined;
  if (typeof value === "string") return { k: "c", s: source, l: [...labels], p: [value] };
  const { parts, complete } = contentParts(value);
  return complete
    ? { k: "c", s: source, l: [...labels], p: parts }
    : { k: "c", s: source, l: [...labels], p: parts, x: 1 };
}

/**
 * The value-set entries of a trusted output: `=<source>` holds its whole values (string and number
 * leaves, object keys); `<source>` those, each line of a leaf, and words of at least `minWord`
 * characters without the sentence punctuation around them.
 */
function valuesEntries(source: string, value: unknown, minWord: number): SessionEntry[] {
  const whole: string[] = [];
  const words: string[] = [];
  visitLeaves(value, 0, (leaf) => {
    whole.push(leaf);
    words.push(leaf);
    if (leaf.includes("\n")) for (const line of leaf.split("\n")) words.push(trimPunctuation(line));
    for (const raw of leaf.split(WORD_SEPARATORS)) {
      const word = trimPunctuation(raw);
      if (word.length >= minWord && word !== leaf) words.push(word);
    }
  });
  return [normalEntry(source, words), normalEntry(`=${source}`, whole)];
}

/** A value-set entry of normalised, distinct, non-empty values (at most MAX_VALUES). */
function normalEntry(source: string, texts: readonly string[]): SessionEntry {
  const values = new Set<string>();
  for (const text of texts) {
    if (values.size >= MAX_VALUES) break;
    const normal = normalizeFlowText(text);
    if (normal.length) values.add(normal);
  }
  return { k: "v", s: source, v: [...values] };
}

const MAX_VALUES = 200_000;
/** The source name of recorded input in the session log. */
const INPUT_SOURCE = "input";
/** Inputs kept for `user_asked` and `session.inputs`, and the characters kept of each. */
const MAX_INPUTS = 64;
const MAX_INPUT_TEXT = 64 * 1024;
/** Shorter words inside a tool output's value (an IBAN's 4-digit groups) are not values of their own. */
const MIN_WORD = 8;
/** Words of the user's own input count down to this length (names, short codes). */
const MIN_INPUT_WORD = 3;
const WORD_SEPARATORS = /[\s,;<>()[\]{}"'|]+/;
/** Sentence punctuation around a value: "rent is 2200." vouches for 2200, "Alice!" for Alice. */
const EDGE_PUNCTUATION = /^[\s.,;:!?¡¿"'`()[\]{}<>«»“”‘’*_~]+|[\s.,;:!?¡¿"'`()[\]{}<>«»“”‘’*_~]+$/gu;

function trimPunctuation(text: string): string {
  return text.replace(EDGE_PUNCTUATION, "");
}

const EMAIL = /[\p{L}\p{N}._%+-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)+/gu;
const URL_TOKEN = /\b(?:https?|ftp):\/\/[^\s<>"'“”]+|\bwww\.[^\s<>"'“”]+/giu;
/** An IBAN as people write it: country, check digits, then groups with or without spaces. */
const IBAN = /\b[A-Z]{2}\d{2}(?:[ \u00a0]?[A-Z0-9]{4}){2,7}(?:[ \u00a0]?[A-Z0-9]{1,3})?\b/giu;
const NUMBER = /[-+]?(?:\d{1,3}(?:[,'\u00a0 ]\d{3})+|\d+)(?:[.,]\d+)?/gu;
const QUOTED = /"([^"\n]{2,200})"|“([^”\n]{2,200})”|«([^»\n]{2,200})»|'([^'\n]{2,200})'/gu;
/** Two to five capitalised words in a row: a name ("Hotel Le Marais", "Bruno Díaz"). */
const NAME = /\p{Lu}[\p{L}\p{M}'’-]*(?:[ \u00a0]+(?:\p{Lu}[\p{L}\p{M}'’-]*|de|la|le|van|von|da|di|del|du)){1,4}/gu;
const MAX_INPUT_TOKENS = 10_000;

/**
 * The values in text a person typed, as people write them: e-mail addresses, URLs, IBANs (grouped
 * or not), numbers (`2,200.50` also as `2200.5`), quoted phrases, runs of capitalised words
 * (names), each line, and every word of at least MIN_INPUT_WORD characters, all without the
 * sentence punctuation around them. The whole text is a value too.
 */
export function inputTokens(text: string): string[] {
  const out = new Set<string>();
  const add = (token: string | undefined) => {
    if (token === undefined || out.size >= MAX_INPUT_TOKENS) return;
    const t = trimPunctuation(token);
    if (t.length) out.add(t);
  };
  add(text);
  for (const line of text.split("\n")) add(line);
  for (const m of text.matchAll(EMAIL)) add(m[0]);
  for (const m of text.matchAll(URL_TOKEN)) add(m[0]);
  for (const m of text.matchAll(IBAN)) add(m[0]);
  for (const m of text.matchAll(QUOTED)) add(m[1] ?? m[2] ?? m[3] ?? m[4]);
  for (const m of text.matchAll(NAME)) add(m[0]);
  for (const m of text.matchAll(NUMBER)) {
    add(m[0]);
    const plain = m[0].replace(/[,'\u00a0 ](?=\d{3}\b)/g, "").replace(",", ".");
    const n = Number(plain);
    if (Number.isFinite(n)) add(String(n));
  }
  for (const raw of text.split(/\s+/)) {
    const word = trimPunctuation(raw);
    if (word.length >= MIN_INPUT_WORD) add(word);
  }
  return [...out];
}

/** Keys are values too (an address that is a key of `shared_with: {addr: rw}`). */
function visitLeaves(value: unknown, depth: number, visit: (text: string) => void): void {
  if (typeof value === "string") visit(value);
  else if (typeof value === "number" && Number.isFinite(value)) visit(String(value));
  else if (depth < 32 && value !== null && typeof value === "object") {
    if (Array.isArray(value)) for (const item of value) visitLeaves(item, depth + 1, visit);
    else
      for (const [key, item] of Object.entries(value)) {
        visit(key);
        visitLeaves(item, depth + 1, visit);
      }
  }
}

/** The values a dotted path reaches, through arrays as conditions read them. */
function valuesAt(value: unknown, path: readonly string[]): unknown[] {
  if (path.length === 0) return [value];
  if (value === null || typeof value !== "object") return [];
  const [segment, ...rest] = path;
  if (Array.isArray(value) && !/^\d+$/.test(segment)) return value.flatMap((item) => valuesAt(item, path));
  return Object.hasOwn(value, segment) ? valuesAt((value as Record<string, unknown>)[segment], rest) : [];
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
