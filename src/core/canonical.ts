import { createHash } from "node:crypto";

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
  return writeCanonical(value, []) ?? "null";
}

function writeCanonical(value: unknown, stack: object[]): string | undefined {
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
  const obj = value as { toJSON?: () => unknown };
  if (typeof obj.toJSON === "function") return writeCanonical(obj.toJSON(), stack);
  if (stack.includes(obj)) return '"[circular]"';
  stack.push(obj);
  let out: string;
  if (Array.isArray(obj)) {
    const parts = new Array<string>(obj.length);
    for (let i = 0; i < obj.length; i++) parts[i] = writeCanonical(obj[i], stack) ?? "null";
    out = `[${parts.join(",")}]`;
  } else {
    const keys = Object.keys(obj).sort();
    const parts: string[] = [];
    for (const key of keys) {
      const item = writeCanonical((obj as Record<string, unknown>)[key], stack);
      if (item !== undefined) parts.push(`${JSON.stringify(key)}:${item}`);
    }
    out = `{${parts.join(",")}}`;
  }
  stack.pop();
  return out;
}

/** Hex SHA-256 of a UTF-8 string. */
export function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/** Hex SHA-256 of the canonical JSON of a value (e.g. `argsHash`). */
export function hashValue(value: unknown): string {
  return sha256Hex(canonicalJson(value));
}
