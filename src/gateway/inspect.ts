export { ARG_LIMITS, argsProblem } from "../core/limits.js";

/** Calls `visit` for every string leaf with its dotted path (cycle- and depth-safe after `argsProblem`). */
export function forEachString(
  value: unknown,
  path: string,
  visit: (text: string, path: string) => void,
): void {
  if (typeof value === "string") {
    visit(value, path);
  } else if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) forEachString(value[i], path ? `${path}.${i}` : String(i), visit);
  } else if (value !== null && typeof value === "object") {
    for (const key of Object.keys(value as Record<string, unknown>)) {
      forEachString((value as Record<string, unknown>)[key], path ? `${path}.${key}` : key, visit);
    }
  }
}

const hasOwn = Object.prototype.hasOwnProperty;

/** The value at a dotted path (own properties only), or undefined. */
export function valueAt(value: unknown, path: readonly string[]): unknown {
  for (const segment of path) {
    if (value === null || typeof value !== "object" || !hasOwn.call(value, segment)) return undefined;
    value = (value as Record<string, unknown>)[segment];
  }
  return value;
}
