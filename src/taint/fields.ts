import { parseDocument } from "yaml";

/** One `fields` entry: a dotted path (`*` any key or index) and the labels of what it reaches. */
export interface FieldLabels {
  readonly path: readonly string[];
  readonly labels: readonly string[];
}

/** A part of an output with the labels it carries; unlabelled parts are the only trusted values. */
export interface OutputPart {
  value: unknown;
  labels: string[];
}

/**
 * How an output was split: `value` (no `fields`: the whole output gets the base labels), `object`
 * (fields applied to an object output), `json` / `yaml` (fields applied to a text output parsed
 * as JSON or YAML), `whole` (fields could not be applied: the whole output gets the base labels
 * and every label the fields declare).
 */
export type SplitForm = "value" | "object" | "json" | "yaml" | "whole";

export interface SplitOutput {
  form: SplitForm;
  parts: OutputPart[];
}

/** Text longer than this is not parsed as JSON: fields cannot be applied (the whole output gets every label). */
const MAX_JSON_CHARS = 16 * 1024 * 1024;
/**
 * YAML parses ~100x slower than JSON (about 3 µs a character here): longer text is not parsed as
 * YAML, and fields cannot be applied to it (it gets every label they declare).
 */
export const MAX_YAML_CHARS = 64 * 1024;
const MAX_DEPTH = 32;

/**
 * Splits a tool output by its `fields` (most specific path first; a field's labels replace `base`
 * for its subtree). A text output that is a JSON or YAML rendering of an object or list is split
 * as that value, so the same result labels the same whether it arrives as an object or as text.
 * When the fields cannot be applied (other text, a scalar, text too long to parse), the whole
 * output carries `base` and every label the fields declare: a rendering never carries fewer
 * labels than the structured output. `drop` lists labels removed everywhere (`declassifies`).
 *
 * Without fields, the whole output carries `base`. A text output is given as its parsed value when
 * it is JSON, or (with `values`, when its unlabelled values are trusted) JSON or YAML of an
 * object or list, so that it reads the same as the structured output.
 */
export function splitOutput(
  output: unknown,
  fields: readonly FieldLabels[],
  base: readonly string[],
  drop: readonly string[] = [],
  options: { values?: boolean } = { values: true },
): SplitOutput {
  const keep = (labels: Iterable<string>) => [...new Set(labels)].filter((l) => !drop.includes(l));
  if (fields.length === 0) {
    const labels = keep(base);
    if (typeof output !== "string") return { form: "value", parts: [{ value: output, labels }] };
    // Labelled text is recorded by its JSON leaves when it is JSON (escapes like `\n` must not
    // break a match, as inside objects); YAML is parsed only where values are trusted, since a
    // labelled output vouches for nothing and parsing costs more than it gives there.
    const parsed = labels.length
      ? parseJson(output)
      : options.values
        ? parseRendering(output, undefined)
        : undefined;
    return { form: "value", parts: [{ value: parsed ? parsed.value : output, labels }] };
  }
  let value = output;
  let form: SplitForm = "object";
  if (typeof output === "string") {
    const parsed = parseRendering(output, fields);
    if (parsed) {
      value = parsed.value;
      form = parsed.form;
    }
  }
  if (value === null || typeof value !== "object") {
    return {
      form: "whole",
      parts: [{ value: output, labels: keep([...base, ...fields.flatMap((f) => f.labels)]) }],
    };
  }
  return { form, parts: splitByFields(value, fields, keep(base), keep) };
}

/**
 * The value a text output renders, when it is JSON or YAML text of an object or a list. YAML is
 * taken only when it names at least one of `fields`' paths (or holds no text at all): prose such
 * as "Subject: pay to ..." also parses as YAML, and must not shed the labels of its fields.
 */
export function parseRendering(
  text: string,
  fields: readonly FieldLabels[] | undefined,
): { value: object; form: "json" | "yaml" } | undefined {
  const json = parseJson(text);
  if (json) return json;
  if (looksLikeJsonContainer(text) && text.length > MAX_JSON_CHARS) return undefined;
  if (text.length > MAX_YAML_CHARS || !/[:\-[{]/.test(text)) return undefined;
  let value: unknown;
  try {
    const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: false });
    if (doc.errors.length) return undefined;
    value = doc.toJS({ maxAliasCount: 100 });
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== "object" || value instanceof Date) return undefined;
  if (fields?.length && !fields.some((field) => reaches(value, field.path, 0, 0)) && hasText(value, 0))
    return undefined;
  return { value, form: "yaml" };
}

/** The object or list a JSON text holds (at most MAX_JSON_CHARS), else undefined. */
function parseJson(text: string): { value: object; form: "json" } | undefined {
  if (!looksLikeJsonContainer(text) || text.length > MAX_JSON_CHARS) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    if (value !== null && typeof value === "object") return { value, form: "json" };
  } catch {
    // Not JSON (perhaps a YAML flow mapping).
  }
  return undefined;
}

/** Whether a field path reaches a node of `value` (arrays pass through, as in `splitByFields`). */
function reaches(value: unknown, path: readonly string[], i: number, depth: number): boolean {
  if (i === path.length) return true;
  if (value === null || typeof value !== "object" || depth > MAX_DEPTH) return false;
  const segment = path[i];
  if (Array.isArray(value)) {
    if (segment === "*" || /^\d+$/.test(segment)) {
      const items = segment === "*" ? value : [value[Number(segment)]];
      if (items.some((item) => reaches(item, path, i + 1, depth + 1))) return true;
      if (segment !== "*") return false;
    }
    return value.some((item) => reaches(item, path, i, depth + 1));
  }
  const entries = Object.entries(value);
  return segment === "*"
    ? entries.some(([, item]) => reaches(item, path, i + 1, depth + 1))
    : Object.hasOwn(value, segment) &&
        reaches((value as Record<string, unknown>)[segment], path, i + 1, depth + 1);
}

function hasText(value: unknown, depth: number): boolean {
  if (typeof value === "string") return value.length > 0;
  if (value === null || typeof value !== "object" || depth > MAX_DEPTH) return false;
  for (const [key, item] of Object.entries(value)) {
    if (!Array.isArray(value) && key.length > 0) return true;
    if (hasText(item, depth + 1)) return true;
  }
  return false;
}

/** A step of a concrete path: an object key or an array index. */
type Step = { key: string; index: boolean };

/**
 * Whether `pattern` matches the concrete path `steps` exactly (`prefix`: could match strictly below it).
 * `*` is any key or index; a number is that index; through an array, a named segment passes any
 * index, so `subject` labels `{subject}` and `[{subject}]` alike (and `*.subject` still works).
 */
function matches(
  pattern: readonly string[],
  p: number,
  steps: readonly Step[],
  s: number,
  prefix: boolean,
): boolean {
  if (s === steps.length) return prefix ? p < pattern.length : p === pattern.length;
  if (p === pattern.length) return false;
  const step = steps[s];
  const segment = pattern[p];
  if (step.index) {
    if ((segment === "*" || segment === step.key) && matches(pattern, p + 1, steps, s + 1, prefix))
      return true;
    return segment !== "*" && !/^\d+$/.test(segment) && matches(pattern, p, steps, s + 1, prefix);
  }
  return (segment === "*" || segment === step.key) && matches(pattern, p + 1, steps, s + 1, prefix);
}

/** Splits a value into parts by the most specific `fields` path that reaches each, with its labels. */
function splitByFields(
  output: object,
  fields: readonly FieldLabels[],
  base: string[],
  keep: (labels: Iterable<string>) => string[],
): OutputPart[] {
  const groups = new Map<string, { labels: string[]; values: unknown[] }>();
  const put = (labels: string[], value: unknown) => {
    const key = labels.join("\0");
    const group = groups.get(key) ?? { labels, values: [] };
    group.values.push(value);
    groups.set(key, group);
  };
  // A field's labels replace the labels above it for its subtree; a more specific field below replaces them again.
  const walk = (value: unknown, steps: Step[], depth: number, labels: string[]) => {
    const field = steps.length ? fields.find((f) => matches(f.path, 0, steps, 0, false)) : undefined;
    const here = field ? keep(field.labels) : labels;
    if (
      value !== null &&
      typeof value === "object" &&
      fields.some((f) => matches(f.path, 0, steps, 0, true))
    ) {
      if (depth >= MAX_DEPTH) return put(keep([...here, ...fields.flatMap((f) => f.labels)]), value);
      const index = Array.isArray(value);
      // The keys of an object walked through are text of the object itself: they keep its labels.
      if (!index && Object.keys(value).length) put(here, Object.keys(value));
      for (const [key, item] of Object.entries(value))
        walk(item, [...steps, { key, index }], depth + 1, here);
      return;
    }
    put(here, value);
  };
  walk(output, [], 0, base);
  return [...groups.values()].map((g) => ({
    value: g.values.length === 1 ? g.values[0] : g.values,
    labels: g.labels,
  }));
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

/** `{...}` or `[...]` after trimming. */
function looksLikeJsonContainer(text: string): boolean {
  let start = 0;
  let end = text.length - 1;
  while (start < end && isSpace(text.charCodeAt(start))) start++;
  while (end > start && isSpace(text.charCodeAt(end))) end--;
  if (end <= start) return false;
  const open = text.charCodeAt(start);
  const close = text.charCodeAt(end);
  return (open === 0x7b && close === 0x7d) || (open === 0x5b && close === 0x5d);
}
