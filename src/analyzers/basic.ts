import { RE2JS } from "re2js";
import { z } from "zod";
import type { ConstraintKind } from "./kind.js";
import { preview } from "./kind.js";

const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);

/** `enum: [a, b]`: the value must be one of these scalars. */
export const enumKind: ConstraintKind<Array<string | number | boolean | null>> = {
  kind: "enum",
  summary: "the value is one of the listed scalars",
  options: z.array(scalar).min(1),
  compile(values) {
    const allowed = new Set<unknown>(values);
    return (value, arg, out) => {
      if (!allowed.has(value)) {
        out.push({ code: "enum.not_allowed", arg, message: `\`${preview(value)}\` is not one of ${JSON.stringify(values)}` });
      }
    };
  },
};

/**
 * `regex: "^[a-z]+$"`: the string must match. Compiled with RE2 semantics (linear time), so an
 * attacker-chosen argument cannot make the check backtrack for ever.
 */
export const regexKind: ConstraintKind<string> = {
  kind: "regex",
  summary: "the string matches a linear-time (RE2) regular expression",
  options: z.string(),
  compile(pattern) {
    const re = compileLinearRegex(pattern);
    return (value, arg, out) => {
      if (typeof value !== "string" || !re.matcher(value).find()) {
        out.push({ code: "regex.mismatch", arg, message: `\`${preview(value)}\` does not match /${pattern}/` });
      }
    };
  },
};

/** `max_length: 200`: strings (in code points' UTF-16 units) and arrays up to this length. */
export const maxLengthKind: ConstraintKind<number> = {
  kind: "max_length",
  summary: "a string or array is at most this long",
  options: z.number().int().nonnegative(),
  compile(max) {
    return (value, arg, out) => {
      const length = typeof value === "string" || Array.isArray(value) ? value.length : -1;
      if (length < 0) {
        out.push({ code: "max_length.type", arg, message: "expected a string or an array" });
      } else if (length > max) {
        out.push({ code: "max_length.exceeded", arg, message: `length ${length} exceeds ${max}` });
      }
    };
  },
};

const rangeOptions = z
  .object({ min: z.number().optional(), max: z.number().optional(), integer: z.boolean().optional() })
  .strict();

/** `range: { min: 0, max: 100, integer: true }`: a finite number within bounds. */
export const rangeKind: ConstraintKind<z.infer<typeof rangeOptions>> = {
  kind: "range",
  summary: "a finite number within min..max (inclusive), optionally an integer",
  options: rangeOptions,
  compile({ min = Number.NEGATIVE_INFINITY, max = Number.POSITIVE_INFINITY, integer = false }) {
    if (min > max) throw new Error(`min ${min} is greater than max ${max}`);
    return (value, arg, out) => {
      if (typeof value !== "number" || !Number.isFinite(value)) {
        out.push({ code: "range.type", arg, message: `\`${preview(value)}\` is not a finite number` });
      } else if (value < min || value > max) {
        out.push({ code: "range.outside", arg, message: `${value} is outside ${min}..${max}` });
      } else if (integer && !Number.isInteger(value)) {
        out.push({ code: "range.not_integer", arg, message: `${value} is not an integer` });
      }
    };
  },
};

/** Compiles a pattern with RE2 semantics; throws with a readable message if it is invalid. */
export function compileLinearRegex(pattern: string): RE2JS {
  try {
    return RE2JS.compile(pattern);
  } catch (error) {
    throw new Error(`invalid regular expression /${pattern}/: ${(error as Error).message}`);
  }
}
