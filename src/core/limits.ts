/** Bounds on what a call's arguments may be; past them the call is denied, never walked further. */
export const ARG_LIMITS = {
  depth: 64,
  nodes: 100_000,
  stringBytes: 8 * 1024 * 1024,
} as const;

/**
 * Why `args` is not a JSON-like value the engine can decide on (cycles, functions, symbols,
 * BigInt, too deep, too large), or undefined when it is fine. One bounded walk, no allocation.
 */
export function argsProblem(args: unknown): string | undefined {
  const budget = { nodes: ARG_LIMITS.nodes, chars: ARG_LIMITS.stringBytes };
  return walk(args, 0, budget);
}

function walk(value: unknown, depth: number, budget: { nodes: number; chars: number }): string | undefined {
  if (--budget.nodes < 0) return `arguments have more than ${ARG_LIMITS.nodes} values`;
  switch (typeof value) {
    case "string":
      budget.chars -= value.length;
      return budget.chars < 0
        ? `arguments hold more than ${ARG_LIMITS.stringBytes} characters of text`
        : undefined;
    case "number":
    case "boolean":
    case "undefined":
      return undefined;
    case "bigint":
      return "arguments hold a BigInt, which is not JSON";
    case "function":
      return "arguments hold a function";
    case "symbol":
      return "arguments hold a symbol";
  }
  if (value === null) return undefined;
  if (depth >= ARG_LIMITS.depth)
    return `arguments are nested deeper than ${ARG_LIMITS.depth} levels (or cyclic)`;
  if (Array.isArray(value)) {
    if (value.length > ARG_LIMITS.nodes)
      return `an argument array has more than ${ARG_LIMITS.nodes} elements`;
    for (let i = 0; i < value.length; i++) {
      const problem = walk(value[i], depth + 1, budget);
      if (problem) return problem;
    }
    return undefined;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    return `arguments hold a \`${(value as object).constructor?.name ?? "non-plain"}\` object, not plain data`;
  }
  for (const key of Object.keys(value as Record<string, unknown>)) {
    // Names are text too: ten 10 MB keys cost the flow scanner what ten 10 MB values would.
    budget.chars -= key.length;
    if (budget.chars < 0) return `arguments hold more than ${ARG_LIMITS.stringBytes} characters of text`;
    const problem = walk((value as Record<string, unknown>)[key], depth + 1, budget);
    if (problem) return problem;
  }
  return undefined;
}
