import { hash } from "node:crypto";

/**
 * Canonical JSON: object keys sorted by UTF-16 code units (as RFC 8785), no whitespace.
 * It equals `JSON.stringify` of the value after a JSON round trip, so a record read back from a
 * file or a database hashes the same as when it was written: `undefined`, functions and symbols
 * vanish from objects and become `null` in arrays, NaN and ±Infinity become `null`, `toJSON` is
 * honoured (Dates become ISO strings). Two additions keep the hot path from throwing: a bigint
 * becomes its decimal string, and a cycle becomes the string "[circular]".
 * Hand-written because libraries either throw on these values or do not sort keys.
 */
export function canonicalJson(value: unknown): string {
  // Most values (audit events, call arguments) are shallow, with keys that are not array indices:
  // a copy with sorted keys handed to the engine's JSON.stringify is the fastest writer. Keys V8
  // would reorder (array indices) or treat specially (`__proto__`), and values past SHALLOW
  // levels, go to the iterative writer below.
  try {
    return JSON.stringify(sortedCopy(value, 0, [], false)) ?? "null";
  } catch (error) {
    if (error !== NOT_PLAIN && error !== TOO_DEEP) throw error;
  }
  return canonicalJsonDeep(value);
}

const SHALLOW = 32;
const TOO_DEEP = Symbol("too deep");
const NOT_PLAIN = Symbol("not plain");

/**
 * The value as JSON.stringify should see it to write canonical JSON: plain objects with their keys
 * inserted in sorted order, arrays, and scalars JSON.stringify writes as `jsonOf` does. Throws
 * NOT_PLAIN or TOO_DEEP when it cannot. `replaced`: the value is what a `toJSON` returned, which is
 * written as it is.
 */
function sortedCopy(value: unknown, depth: number, path: object[], replaced: boolean): unknown {
  switch (typeof value) {
    case "string":
    case "number":
    case "boolean":
      return value;
    case "bigint":
      return value.toString();
    case "undefined":
    case "function":
    case "symbol":
      return undefined;
  }
  if (value === null) return null;
  if (!replaced) {
    const toJSON = (value as { toJSON?: () => unknown }).toJSON;
    if (typeof toJSON === "function") return sortedCopy(toJSON.call(value), depth, path, true);
  }
  const obj = value as object;
  if (path.includes(obj)) return "[circular]";
  if (depth === SHALLOW) throw TOO_DEEP;
  path.push(obj);
  let out: unknown;
  if (Array.isArray(obj)) {
    const list: unknown[] = new Array(obj.length);
    for (let i = 0; i < obj.length; i++) {
      const item = sortedCopy(obj[i], depth + 1, path, false);
      list[i] = item === undefined ? null : item;
    }
    out = list;
  } else {
    const keys = sortedKeys(obj);
    const copy: Record<string, unknown> = {};
    for (const key of keys) {
      const first = key.charCodeAt(0);
      if ((first >= 48 && first <= 57) || key === "__proto__") throw NOT_PLAIN;
      const item = sortedCopy((obj as Record<string, unknown>)[key], depth + 1, path, false);
      if (item !== undefined) copy[key] = item;
    }
    out = copy;
  }
  path.pop();
  return out;
}

/** An object's own enumerable keys, sorted by UTF-16 code units. The array is shared: never change it. */
function sortedKeys(obj: object): string[] {
  const keys = Object.keys(obj);
  if (keys.length < 2) return keys;
  if (keys.length > MAX_SHAPE_KEYS) return keys.sort();
  // Sorting costs more than writing the rest of a record; the objects written (records, findings,
  // a tool's arguments) come in a few shapes, so the sorted order of each shape met is kept.
  const first = keys[0]!;
  const known = shapes.get(first);
  if (known) {
    for (const shape of known) if (sameKeys(shape.keys, keys)) return shape.sorted;
  }
  const sorted = [...keys].sort();
  if (shapes.size >= MAX_SHAPES) shapes.clear();
  const entry = { keys, sorted };
  if (!known) shapes.set(first, [entry]);
  else if (known.length < SHAPES_PER_FIRST_KEY) known.push(entry);
  else known[0] = entry;
  return sorted;
}

/** Key lists met, and their sorted order, by first key; bounded, as arguments' keys are anyone's. */
const shapes = new Map<string, Array<{ keys: string[]; sorted: string[] }>>();
const MAX_SHAPES = 256;
const SHAPES_PER_FIRST_KEY = 4;
const MAX_SHAPE_KEYS = 64;

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Canonical JSON of a value of any depth (exported for the test that holds the two writers equal). */
export function canonicalJsonDeep(value: unknown): string {
  // Iterative, never recursive, and written front to back into one list of pieces: a value nested
  // 100,000 deep (an agent's arguments, a record read back from a log) costs time linear in its
  // size and no stack.
  const first = enter(value, new Set());
  if (typeof first !== "object") return first ?? "null";
  const out: string[] = [first.keys ? "{" : "["];
  const frames: Frame[] = [first];
  const onPath = new Set<object>([first.obj]);
  while (frames.length) {
    const top = frames[frames.length - 1];
    if (top.i === top.size) {
      out.push(top.keys ? "}" : "]");
      frames.pop();
      onPath.delete(top.obj);
      continue;
    }
    const i = top.i++;
    const written = enter(
      top.keys ? (top.obj as Record<string, unknown>)[top.keys[i]] : (top.obj as unknown[])[i],
      onPath,
    );
    // In an object a property without a JSON value is left out; in an array it is `null`.
    if (written === undefined && top.keys) continue;
    if (top.written++ > 0) out.push(",");
    if (top.keys) out.push(`${JSON.stringify(top.keys[i])}:`);
    if (typeof written === "object") {
      out.push(written.keys ? "{" : "[");
      frames.push(written);
      onPath.add(written.obj);
    } else out.push(written ?? "null");
  }
  return out.join("");
}

/** An object or array being written: its sorted keys (objects), the next index, how many were written. */
interface Frame {
  obj: object;
  keys: string[] | undefined;
  size: number;
  i: number;
  written: number;
}

/** A scalar's JSON (undefined: leave it out), or a frame to write an object or array. */
function enter(value: unknown, onPath: Set<object>): string | undefined | Frame {
  const obj = jsonOf(value);
  if (typeof obj !== "object") return obj;
  if (onPath.has(obj)) return '"[circular]"';
  if (Array.isArray(obj)) return { obj, keys: undefined, size: obj.length, i: 0, written: 0 };
  const keys = sortedKeys(obj);
  return { obj, keys, size: keys.length, i: 0, written: 0 };
}

/**
 * A value as JSON sees it: a scalar's text (undefined: leave it out), or the object or array to
 * write. As JSON.stringify, `toJSON` is called once and what it returns is written as it is.
 */
function jsonOf(value: unknown): string | undefined | object {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "number":
      return Number.isFinite(value) ? JSON.stringify(value) : "null";
    case "boolean":
      return value ? "true" : "false";
    case "bigint":
      return `"${value.toString()}"`;
    case "undefined":
    case "function":
    case "symbol":
      return undefined;
  }
  if (value === null) return "null";
  const toJSON = (value as { toJSON?: () => unknown }).toJSON;
  if (typeof toJSON !== "function") return value;
  const replaced = toJSON.call(value);
  return replaced !== null && typeof replaced === "object" ? replaced : jsonOf(replaced);
}

/** Hex SHA-256 of a UTF-8 string. */
export function sha256Hex(text: string): string {
  // The one-shot form: about twice as fast as createHash() for record-sized inputs.
  return hash("sha256", text, "hex");
}

/** Hex SHA-256 of the canonical JSON of a value (e.g. `argsHash`). */
export function hashValue(value: unknown): string {
  return sha256Hex(canonicalJson(value));
}
