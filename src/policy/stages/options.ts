import type { z } from "zod";
import { didYouMean } from "../source.js";
import type { PathSegment } from "../source.js";

/**
 * Parses an analyzer's options; when they do not parse, reports why and gives undefined: an
 * unknown key (with a "did you mean" when `suggest`), or the schema's own message after `` `name`: ``.
 */
export function parseOptions<T>(
  name: string,
  schema: z.ZodType<T>,
  options: unknown,
  report: (path: PathSegment[], message: string, help?: string, unknownKey?: boolean) => void,
  suggest: boolean,
): { data: T } | undefined {
  const parsed = schema.safeParse(options);
  if (parsed.success) return { data: parsed.data };
  for (const issue of parsed.error.issues) {
    const sub = issue.path.filter((p): p is PathSegment => typeof p !== "symbol");
    const keys = issue.code === "unrecognized_keys" ? issue.keys : [];
    if (!keys.length) {
      report(sub, `\`${name}\`: ${issue.message.replace(/^Invalid input: /, "").toLowerCase()}`);
      continue;
    }
    for (const key of keys) {
      const known = suggest ? optionKeys(schema, sub) : [];
      const guess = didYouMean(key, known);
      const help = guess
        ? `did you mean \`${guess}\`?`
        : known.length
          ? `options: ${known.join(", ")}`
          : undefined;
      report([...sub, key], `unknown \`${name}\` option \`${key}\``, help, true);
    }
  }
  return undefined;
}

/** The keys an options schema accepts at `path` (for "did you mean"); none when it is not an object. */
function optionKeys(schema: unknown, path: readonly PathSegment[]): string[] {
  let node = schema as { shape?: Record<string, unknown>; unwrap?: () => unknown } | undefined;
  for (const segment of [...path, undefined]) {
    while (node && !node.shape && typeof node.unwrap === "function") node = node.unwrap() as typeof node;
    if (!node?.shape) return [];
    if (segment === undefined) return Object.keys(node.shape);
    node = node.shape[String(segment)] as typeof node;
  }
  return [];
}
