import { canonicalJson, sha256Hex } from "./canonical.js";
import { argsProblem } from "./limits.js";

/**
 * What an audit record keeps of a call's arguments (the policy's `audit.args`):
 * - `hash`: only `argsHash`, the SHA-256 of their canonical JSON (the default);
 * - `redact`: their shape: keys, numbers, booleans and nulls, with every string replaced by
 *   `"<string:N>"` (N = length). No string is kept, however short: `"hunter2"` looks as harmless
 *   as `"us-east-1"`. Arrays past 50 items and nesting past 8 levels are summarised;
 * - `full`: the raw arguments, with every string (keys too) passed through `redactSecrets`.
 */
export type AuditArgsMode = "hash" | "redact" | "full";

export interface AuditedArgs {
  /** Hex SHA-256 of the canonical JSON of the arguments (`{}` when there are none). */
  argsHash: string;
  /** Present for `redact` and `full`. */
  args?: unknown;
}

const MAX_ITEMS = 50;
const MAX_DEPTH = 8;

/** How much of the canonical JSON of unrecordable arguments a `full` record keeps. */
export const AUDIT_EXCERPT_CHARS = 1024;

/**
 * The arguments as an audit record holds them. `redactSecrets` masks credentials in a string
 * (the secrets detector's masking function); in `full` mode without it, strings are kept as they are.
 * Never throws: cycles, bigints and other non-JSON values are handled as `canonicalJson` does.
 *
 * Arguments past the engine's bounds (`ARG_LIMITS`: nesting, values, text) are never written as
 * they are, whatever the mode: the record keeps their hash, why they were not recorded and, in
 * `full` mode, a bounded excerpt of their JSON. So no call can make a record that a reader cannot
 * read back, and every call, however malformed, gets its record.
 */
export function auditArgs(
  args: unknown,
  mode: AuditArgsMode,
  redactSecrets?: (text: string) => string,
): AuditedArgs {
  const canonical = canonicalJson(args ?? {});
  const argsHash = sha256Hex(canonical);
  if (mode === "hash") return { argsHash };
  // Bounds apply to the JSON the record would hold (cycles, bigints and Dates already written as text).
  const plain: unknown = JSON.parse(canonical);
  const problem = argsProblem(plain);
  if (problem) {
    const summary: Record<string, unknown> = { "<unrecorded>": problem, "<chars>": canonical.length };
    if (mode === "full") {
      const excerpt = canonical.slice(0, AUDIT_EXCERPT_CHARS);
      summary["<excerpt>"] = redactSecrets ? redactSecrets(excerpt) : excerpt;
    }
    return { argsHash, args: summary };
  }
  if (mode === "redact") return { argsHash, args: shape(plain, 0) };
  return { argsHash, args: redactSecrets ? maskStrings(plain, redactSecrets) : plain };
}

function shape(value: unknown, depth: number): unknown {
  if (typeof value === "string") return `<string:${value.length}>`;
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) {
    if (depth >= MAX_DEPTH) return `<array:${value.length}>`;
    const items = value.slice(0, MAX_ITEMS).map((item) => shape(item, depth + 1));
    if (value.length > MAX_ITEMS) items.push(`<${value.length - MAX_ITEMS} more>`);
    return items;
  }
  const keys = Object.keys(value);
  if (depth >= MAX_DEPTH) return `<object:${keys.length}>`;
  const out: Record<string, unknown> = {};
  for (const key of keys) setOwn(out, key, shape((value as Record<string, unknown>)[key], depth + 1));
  return out;
}

function maskStrings(value: unknown, mask: (text: string) => string): unknown {
  if (typeof value === "string") return mask(value);
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((item) => maskStrings(item, mask));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) setOwn(out, mask(key), maskStrings(item, mask));
  return out;
}

/** Defines an own property, so a key named `__proto__` stays data instead of replacing the prototype. */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}
