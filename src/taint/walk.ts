import type { FlowEvidence } from "../core/index.js";
import type { FlowHit, FlowIndex } from "./flow-index.js";

/** Deeper values (objects, arrays, JSON inside strings) are not walked; the walk reports itself incomplete. */
export const MAX_WALK_DEPTH = 64;
/** Values with more nodes than this are walked only this far; the walk reports itself incomplete. */
export const MAX_WALK_NODES = 1_000_000;
/** Strings longer than this are not parsed as JSON (they are still scanned as text). */
const MAX_JSON_CHARS = 16 * 1024 * 1024;

type Visit = (text: string, path: string) => void;

interface Walk {
  visit: Visit;
  /** Also visit the percent-decoded form of URL-encoded strings (arguments: `?q=secret%20text`). */
  percent: boolean;
  /** Visit a string that parses as JSON as well as its parsed leaves (arguments), or only the leaves (content). */
  keepJsonText: boolean;
  nodes: number;
  complete: boolean;
  seen: Set<object>;
}

/**
 * Scans every string leaf of a JSON-like value (object keys and values, array elements, numbers
 * as their decimal text, JSON documents inside strings, percent-decoded URL text) and appends one
 * hit per (label, source, argument path) to `out`. Paths are dotted from `path`: `body.to.0`;
 * hits inside a JSON string name the string's path.
 *
 * Returns true when the whole value was inspected. False when something was skipped: nesting
 * deeper than MAX_WALK_DEPTH, more than MAX_WALK_NODES nodes, binary data (typed arrays), or a
 * value whose properties throw. A caller with `fail: closed` should treat false as unknown flows.
 * Cycles and shared sub-objects are walked once. Never throws.
 */
export function scanValue(index: FlowIndex, value: unknown, path: string, out: FlowEvidence[]): boolean {
  let reported: Set<string> | undefined;
  const hits: FlowHit[] = [];
  const state: Walk = {
    visit: (text, arg) => {
      index.collect(text, hits);
      for (const hit of hits) {
        const key = `${hit.label}\u0000${hit.source}\u0000${arg}`;
        reported ??= new Set();
        if (reported.has(key)) continue;
        reported.add(key);
        out.push({ label: hit.label, source: hit.source, arg });
      }
      hits.length = 0;
    },
    percent: true,
    keepJsonText: true,
    nodes: 0,
    complete: true,
    seen: new Set(),
  };
  return run(state, value, path);
}

/**
 * Records a JSON-like value (a tool output, the user's input) as labelled content: its string
 * leaves are recorded as separate parts, a string that parses as JSON by its parsed leaves (so
 * escapes like `\n` and `\"` do not break matches). When the value cannot be walked completely,
 * the index is marked overflowed (fail-closed) and false is returned. Never throws.
 */
export function addValue(
  index: FlowIndex,
  value: unknown,
  labels: readonly string[],
  source: string,
): boolean {
  if (labels.length === 0) return true;
  const { parts, complete } = contentParts(value);
  index.add(parts, labels, source);
  if (!complete) index.markOverflowed();
  return complete;
}

/**
 * The parts `addValue` records for a value (its string leaves; a string that parses as JSON by
 * its parsed leaves), and whether the walk was complete: what a session stores to rebuild the
 * same fingerprints on another replica. Never throws.
 */
export function contentParts(value: unknown): { parts: string[]; complete: boolean } {
  const parts: string[] = [];
  const state: Walk = {
    visit: (text) => {
      parts.push(text);
    },
    percent: false,
    keepJsonText: false,
    nodes: 0,
    complete: true,
    seen: new Set(),
  };
  const complete = run(state, value, "");
  return { parts, complete };
}

function run(state: Walk, value: unknown, path: string): boolean {
  try {
    walk(state, value, path, 0);
  } catch {
    state.complete = false;
  }
  return state.complete;
}

function join(path: string, key: string | number, pinned: boolean): string {
  if (pinned) return path;
  return path === "" ? String(key) : `${path}.${key}`;
}

/** `pinned`: inside a JSON string, where every leaf is reported under the string's own path. */
function walk(state: Walk, value: unknown, path: string, depth: number, pinned = false): void {
  if (++state.nodes > MAX_WALK_NODES) {
    state.complete = false;
    return;
  }
  switch (typeof value) {
    case "string":
      walkString(state, value, path, depth);
      return;
    case "number":
      if (Number.isFinite(value)) state.visit(String(value), path);
      return;
    case "bigint":
      state.visit(String(value), path);
      return;
    case "object":
      break;
    default:
      return;
  }
  if (value === null) return;
  if (depth >= MAX_WALK_DEPTH) {
    state.complete = false;
    return;
  }
  if (state.seen.has(value)) return;
  state.seen.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length && state.nodes <= MAX_WALK_NODES; i++) {
      walk(state, value[i], join(path, i, pinned), depth + 1, pinned);
    }
    return;
  }
  if (ArrayBuffer.isView(value)) {
    state.complete = false;
    return;
  }
  if (value instanceof Map || value instanceof Set) {
    walk(state, Array.from(value), path, depth + 1, pinned);
    return;
  }
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === "function") {
    walk(state, toJSON.call(value), path, depth + 1, pinned);
    return;
  }
  for (const key of Object.keys(value)) {
    if (state.nodes > MAX_WALK_NODES) {
      state.complete = false;
      return;
    }
    const child = join(path, key, pinned);
    state.visit(key, child);
    walk(state, (value as Record<string, unknown>)[key], child, depth + 1, pinned);
  }
}

function walkString(state: Walk, text: string, path: string, depth: number): void {
  const json = looksLikeJson(text);
  if (json && text.length <= MAX_JSON_CHARS && depth < MAX_WALK_DEPTH) {
    let parsed: unknown;
    let ok = true;
    try {
      parsed = JSON.parse(text);
    } catch {
      ok = false;
    }
    if (ok) {
      if (state.keepJsonText) state.visit(text, path);
      walk(state, parsed, path, depth + 1, true);
      return;
    }
  } else if (json) {
    state.complete = false;
  }
  state.visit(text, path);
  if (state.percent && depth < MAX_WALK_DEPTH && PERCENT.test(text)) {
    const decoded = decodePercent(text);
    if (decoded !== text) walkString(state, decoded, path, depth + 1);
  }
}

const PERCENT = /%[0-9a-fA-F]{2}|\+/;
const PERCENT_RUN = /(?:%[0-9a-fA-F]{2})+/g;

/** Form/URL decoding that never throws: malformed runs stay as they are. */
function decodePercent(text: string): string {
  return text.replace(/\+/g, " ").replace(PERCENT_RUN, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return run;
    }
  });
}

function isJsonSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

/** `{...}`, `[...]` or `"..."` after trimming; checked from both ends without a regex. */
function looksLikeJson(text: string): boolean {
  let start = 0;
  let end = text.length - 1;
  while (start < end && isJsonSpace(text.charCodeAt(start))) start++;
  while (end > start && isJsonSpace(text.charCodeAt(end))) end--;
  if (end <= start) return false;
  const open = text.charCodeAt(start);
  const close = text.charCodeAt(end);
  return (
    (open === 0x7b && close === 0x7d) ||
    (open === 0x5b && close === 0x5d) ||
    (open === 0x22 && close === 0x22)
  );
}
