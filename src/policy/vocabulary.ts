/**
 * The words of a `when`: its keys and the operators of its tests. The compiler (`conditions.ts`,
 * and the rule index in `stages/rules.ts`), the reference evaluator (`reference.ts`) and the
 * property-test generators (`test/properties/arbitraries.ts`) take them from here and switch over
 * them exhaustively, so a word added here and not there, or there and not here, does not
 * type-check (`test/properties/vocabulary.test.ts` checks the rest at run time).
 */

/** The keys of a `when`; `args.` and `agent.` stand for `args.<path>` and `agent.<path>`. */
export const WHEN_KEYS = [
  "tool",
  "server",
  "risk",
  "sink",
  "flows",
  "seen",
  "findings",
  "expr",
  "user_asked",
  "any",
  "all",
  "not",
  "args.",
  "agent.",
] as const;
export type WhenKey = (typeof WHEN_KEYS)[number];

/** The vocabulary word of a `when` key (`args.` for `args.amount`), or undefined for an unknown key. */
export function whenKeyOf(key: string): WhenKey | undefined {
  if (key.startsWith("args.")) return key.length > 5 ? "args." : undefined;
  if (key.startsWith("agent.")) return key.length > 6 ? "agent." : undefined;
  return (WHEN_KEYS as readonly string[]).includes(key) ? (key as WhenKey) : undefined;
}

/** Operators of an `args.<path>` / `agent.<path>` test that compare the value itself. */
export const VALUE_OPERATORS = [
  "eq",
  "ne",
  "in",
  "not_in",
  "contains",
  "regex",
  "gt",
  "gte",
  "lt",
  "lte",
  "prefix",
  "glob",
  "exists",
] as const;
export type ValueOperator = (typeof VALUE_OPERATORS)[number];

/** Operators of an argument test that read the session: labels that flowed in, trusted sources. */
export const SESSION_OPERATORS = ["flows", "from"] as const;
export type SessionOperator = (typeof SESSION_OPERATORS)[number];

export const OPERATORS = [...VALUE_OPERATORS, ...SESSION_OPERATORS] as const;
export type Operator = ValueOperator | SessionOperator;

export function isValueOperator(op: string): op is ValueOperator {
  return (VALUE_OPERATORS as readonly string[]).includes(op);
}

/**
 * Operators that can hold for a missing value (`exists` only as `exists: false`); a rule using any
 * other needs its argument present, so the rule index files it under that argument.
 */
export const HOLD_WHEN_MISSING: ReadonlySet<Operator> = new Set<Operator>(["ne", "not_in", "exists"]);

/** `risk: { <op>: level }`. */
export const RISK_OPERATORS = ["gte", "gt", "lte", "lt", "eq"] as const;
export type RiskOperator = (typeof RISK_OPERATORS)[number];

/** For the `default` of an exhaustive switch over a vocabulary: a word no branch took. */
export function unknownWord(word: never): never {
  throw new Error(`unknown \`when\` word \`${String(word)}\``);
}
