import { posix } from "node:path";
import type { Finding } from "../core/index.js";
import { CONSTRAINT_KINDS } from "../analyzers/index.js";
import type { ArgCheck } from "../analyzers/index.js";

/** A constraint learned for one argument, with the note `suggest` writes beside it. */
export interface LearnedConstraint {
  /** `{ <kind>: options }`, as under `tools.<tool>.args.<arg>`; undefined when nothing fits. */
  constraint?: Record<string, unknown>;
  /** One line: how many calls it was learned from and anything it admits beyond what was seen. */
  note: string;
}

/** Most distinct values a learned `enum` lists. */
export const ENUM_MAX = 8;
/** Base that relative paths resolve against when only relative paths were seen (said in the note). */
export const RELATIVE_BASE = "/workspace";

const URL_SCHEMES = new Set(["http", "https", "ws", "wss", "ftp"]);
const DEFAULT_PORTS: Record<string, number> = { http: 80, https: 443, ws: 80, wss: 443, ftp: 21 };
const PATH_NAME = /(^|_|-)(path|paths|file|files|filename|filepath|dir|directory|folder)$/i;
const SHELL_NAME = /^(command|cmd|script|shell|commandline|command_line)$/i;
const SQL_START =
  /^\s*(\(\s*)*(select|with|insert|update|delete|merge|replace|create|alter|drop|truncate|grant|revoke|explain|show|describe|call|set)\b/i;
/** Programs whose first operand is a subcommand (`git log`): learned with it, so `git push` stays out. */
const SUBCOMMAND_PROGRAMS = new Set([
  "git",
  "npm",
  "pnpm",
  "yarn",
  "docker",
  "kubectl",
  "cargo",
  "go",
  "pip",
  "apt",
  "apt-get",
  "brew",
  "systemctl",
  "gh",
  "aws",
  "gcloud",
  "az",
  "helm",
  "terraform",
]);

const calls = (n: number) => `${n} call${n === 1 ? "" : "s"}`;

/**
 * Learns the narrowest constraint of the right kind that admits every observed value of one
 * argument: a URL's schemes, hosts and ports; a path's roots; SQL statement kinds and tables; shell
 * programs; numeric ranges; small enums; the character shape of identifiers. The analyzers are the
 * parsers: SQL and shell are learned by asking their checks what they would refuse under an empty
 * allowlist, and every learned constraint is checked against every observed value before it is
 * returned. `count` is the number of calls the values came from.
 */
export function learnConstraint(
  name: string,
  values: readonly unknown[],
  count: number,
  options: LearnOptions = {},
): LearnedConstraint {
  const learned = options.generalize
    ? (generalized(name, values, count) ?? guess(name, values, count))
    : guess(name, values, count);
  if (!learned.constraint) return learned;
  const failures = refusals(learned.constraint, values);
  if (failures.length === 0) return learned;
  const url = learned.constraint.url as Record<string, unknown> | undefined;
  if (url && failures.every((f) => f.startsWith("url.private"))) {
    // A private host was used on purpose: admit private addresses, but only the hosts listed.
    const opened = { url: { ...url, private: "allow" } };
    if (refusals(opened, values).length === 0)
      return {
        constraint: opened,
        note: `${learned.note}; a private address was seen, so \`private: allow\` (metadata stays refused)`,
      };
  }
  // The analyzer refuses something that was observed (a private host, an unparsable query): say so, learn nothing.
  return {
    note: `${leaf(name)}: ${Object.keys(learned.constraint)[0]} not learned: an observed value is refused by the analyzer (${failures[0]})`,
  };
}

export interface LearnOptions {
  /**
   * Admit values like the ones seen, not only those: identifiers, dates and codes by their shape
   * instead of an enum, names seen once each left free, numbers from 0 to the next power of ten.
   * Every widening is said in the note. URLs, paths, SQL and shell stay exact.
   */
  generalize?: boolean;
}

/** The generalized constraint for scalars (strings with digits, names, numbers); undefined for the analyzers' kinds. */
function generalized(key: string, values: readonly unknown[], count: number): LearnedConstraint | undefined {
  if (values.length === 0) return undefined;
  if (values.every((v) => typeof v === "number" && Number.isFinite(v))) {
    const numbers = values as number[];
    const min = Math.min(...numbers);
    const max = Math.max(...numbers);
    if (min < 0) return undefined;
    const bound = 10 ** Math.ceil(Math.log10(Math.max(max, 1) + 1e-9));
    const integer = numbers.every(Number.isInteger);
    return {
      constraint: { range: integer ? { min: 0, max: bound, integer: true } : { min: 0, max: bound } },
      note: `${key}: ${min}..${max} seen in ${calls(count)}; widened to 0..${bound} (the next power of ten)`,
    };
  }
  if (!values.every((v) => typeof v === "string")) return undefined;
  const strings = values as string[];
  if (
    learnUrl(key, strings, count) ||
    learnSql(key, strings, count) ||
    learnShell(key, strings, count) ||
    learnPath(key, strings, count)
  )
    return undefined;
  const distinct = [...new Set(strings)].sort();
  if (distinct.some(isFreeText)) return undefined;
  if (strings.every((v) => /[0-9]/.test(v))) {
    const shape = shapeRegex(distinct);
    if (shape)
      return {
        constraint: { regex: shape },
        note: `${key}: ${distinct.length} distinct values in ${calls(count)}; widened to their shape (any value like them)`,
      };
  }
  // Names the agent meets once each (people, places) are not a vocabulary: only a repeated set is.
  if (distinct.length === count && count > 0)
    return {
      note: `${key}: ${distinct.length} different values in ${calls(count)}, none repeated: left free (generalize)`,
    };
  return undefined;
}

function guess(name: string, values: readonly unknown[], count: number): LearnedConstraint {
  const key = leaf(name);
  if (values.length === 0) return { note: `${key}: no values seen` };
  if (values.every((v) => typeof v === "number" && Number.isFinite(v)))
    return learnRange(key, values as number[], count);
  if (values.every((v) => typeof v === "string")) {
    const strings = values as string[];
    const url = learnUrl(key, strings, count);
    if (url) return url;
    const sql = learnSql(key, strings, count);
    if (sql) return sql;
    const shell = learnShell(key, strings, count);
    if (shell) return shell;
    const path = learnPath(key, strings, count);
    if (path) return path;
    return learnString(key, strings, count);
  }
  const distinct = distinctValues(values);
  if (
    distinct.length <= ENUM_MAX &&
    distinct.every((v) => v === null || ["boolean", "number", "string"].includes(typeof v))
  ) {
    return {
      constraint: { enum: distinct },
      note: `${key}: ${distinct.length === 1 ? "one value" : `one of ${distinct.length} values`} seen in ${calls(count)}`,
    };
  }
  return { note: `${key}: mixed values in ${calls(count)}: no constraint learned` };
}

function leaf(name: string): string {
  return name;
}

/** What the compiled constraint says about each observed value that it refuses. */
export function refusals(constraint: Record<string, unknown>, values: readonly unknown[]): string[] {
  const out: string[] = [];
  for (const [kind, options] of Object.entries(constraint)) {
    const spec = CONSTRAINT_KINDS.get(kind);
    if (!spec) return [`unknown kind ${kind}`];
    let check: ArgCheck;
    try {
      check = spec.compile(spec.options.parse(options));
    } catch (error) {
      return [(error as Error).message];
    }
    for (const value of values) {
      const findings: Finding[] = [];
      check(value, "value", findings);
      if (findings.length) out.push(`${findings[0].code}: ${findings[0].message}`);
    }
  }
  return out;
}

function distinctValues(values: readonly unknown[]): unknown[] {
  const seen = new Map<string, unknown>();
  for (const value of values) seen.set(JSON.stringify(value), value);
  return [...seen.values()].sort((a, b) => String(a).localeCompare(String(b)));
}

function learnRange(key: string, values: number[], count: number): LearnedConstraint {
  const distinct = new Set(values);
  const min = Math.min(...values);
  const max = Math.max(...values);
  const integer = values.every(Number.isInteger);
  if (distinct.size <= 2 && count >= 4 && distinct.size < count) {
    // The same one or two numbers again and again: a setting, not a quantity.
    const list = [...distinct].sort((a, b) => a - b);
    return { constraint: { enum: list }, note: `${key}: always ${list.join(" or ")} in ${calls(count)}` };
  }
  return {
    constraint: { range: integer ? { min, max, integer: true } : { min, max } },
    note: `${key}: ${min}..${max}${integer ? ", integers" : ""} in ${calls(count)} (${distinct.size} distinct)`,
  };
}

function learnUrl(key: string, values: string[], count: number): LearnedConstraint | undefined {
  const schemes = new Set<string>();
  const hosts = new Set<string>();
  const ports = new Set<number>();
  for (const value of values) {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      return undefined;
    }
    const scheme = url.protocol.replace(/:$/, "");
    if (!URL_SCHEMES.has(scheme) || url.hostname === "") return undefined;
    schemes.add(scheme);
    hosts.add(url.hostname.replace(/\.+$/, ""));
    ports.add(url.port ? Number(url.port) : DEFAULT_PORTS[scheme]);
  }
  const hostList = [...hosts].sort();
  return {
    constraint: {
      url: { schemes: [...schemes].sort(), hosts: hostList, ports: [...ports].sort((a, b) => a - b) },
    },
    note: `${key}: ${hostList.length} host${hostList.length === 1 ? "" : "s"} seen in ${calls(count)}; exact names, no wildcard`,
  };
}

/** Statement kinds and tables, read from what the SQL analyzer refuses when nothing is allowed. */
function learnSql(key: string, values: string[], count: number): LearnedConstraint | undefined {
  if (!values.every((v) => SQL_START.test(v))) return undefined;
  const spec = CONSTRAINT_KINDS.get("sql")!;
  const probe = spec.compile({ allow: [], tables: { allow: [] }, functions: {} });
  const kinds = new Set<string>();
  const tables = new Set<string>();
  for (const value of values) {
    const findings: Finding[] = [];
    probe(value, "q", findings);
    for (const finding of findings) {
      if (finding.code === "sql.unparsable") return undefined;
      const kind = /^`([A-Z_]+)` (statements|inside)/.exec(finding.message);
      if (finding.code === "sql.not_allowed" && kind) kinds.add(kind[1].toLowerCase());
      const table = /^table `(.+)` is not in the allowed tables$/.exec(finding.message);
      if (finding.code === "sql.table_not_allowed" && table) tables.add(table[1].toLowerCase());
    }
  }
  if (kinds.size === 0) return undefined;
  const constraint: Record<string, unknown> = { allow: [...kinds].sort() };
  if (tables.size) constraint.tables = { allow: [...tables].sort() };
  return {
    constraint: { sql: constraint },
    note: `${key}: ${[...kinds].sort().join(", ")} on ${tables.size ? [...tables].sort().join(", ") : "no table"} in ${calls(count)}`,
  };
}

/** Programs, read from what the shell analyzer refuses, until it refuses no program (wrappers reveal what they run). */
function learnShell(key: string, values: string[], count: number): LearnedConstraint | undefined {
  if (!SHELL_NAME.test(key.split(".").at(-1) ?? "")) return undefined;
  const spec = CONSTRAINT_KINDS.get("shell")!;
  const programs = new Set<string>();
  const allow: Record<string, boolean> = {};
  const ALLOW_BY_CODE: Record<string, string> = {
    "shell.substitution": "substitution",
    "shell.redirect": "redirect_write",
    "shell.background": "background",
    "shell.env_assign": "env_assign",
  };
  // An entry no command can match makes the analyzer name a program's subcommand (`git log`) in its refusal.
  const seeds = [...SUBCOMMAND_PROGRAMS].map((program) => `${program} \u0001`);
  for (let round = 0; round < 12; round++) {
    const check = spec.compile({ programs: [...seeds, ...programs], allow });
    let grew = false;
    for (const value of values) {
      const findings: Finding[] = [];
      check(value, "c", findings);
      for (const finding of findings) {
        if (finding.code === "shell.unparsable") return undefined;
        const option = ALLOW_BY_CODE[finding.code];
        if (option && !allow[option]) {
          allow[option] = true;
          grew = true;
        }
        const program = /^`(.+)` is not an allowed program$/.exec(finding.message);
        if (finding.code === "shell.not_allowed" && program) {
          const words = program[1].split(" ");
          const entry = SUBCOMMAND_PROGRAMS.has(words[0]) && words[1] ? `${words[0]} ${words[1]}` : words[0];
          if (!programs.has(entry)) {
            programs.add(entry);
            grew = true;
          }
        }
      }
    }
    if (!grew) break;
  }
  if (programs.size === 0) return undefined;
  const constraint: Record<string, unknown> = { programs: [...programs].sort() };
  if (Object.keys(allow).length) constraint.allow = allow;
  const extras = Object.keys(allow);
  return {
    constraint: { shell: constraint },
    note: `${key}: ${programs.size} program${programs.size === 1 ? "" : "s"} seen in ${calls(count)}${extras.length ? `; also seen: ${extras.join(", ")}` : ""}`,
  };
}

function learnPath(key: string, values: string[], count: number): LearnedConstraint | undefined {
  const named = PATH_NAME.test(key.split(".").at(-1) ?? "");
  const looksLikePaths = values.every((v) => /^(\/|\.\.?\/)[^\0\n]*$/.test(v));
  if (!named && !looksLikePaths) return undefined;
  if (
    !values.every(
      (v) => v.length > 0 && v.length < 4096 && !/[\0\n]/.test(v) && !/^[a-z][a-z0-9+.-]*:/i.test(v),
    )
  )
    return undefined;
  const relative = values.filter((v) => !v.startsWith("/"));
  const roots = new Set<string>();
  for (const value of values) {
    if (!value.startsWith("/")) continue;
    const normal = posix.normalize(value);
    const dir = posix.dirname(normal);
    // A file at the top of the file system is its own root: `/` would admit everything.
    roots.add(dir === "/" ? normal : dir);
  }
  const within = [...roots]
    .sort()
    .filter((root, _, all) => !all.some((other) => other !== root && root.startsWith(`${other}/`)));
  if (relative.length) within.unshift(RELATIVE_BASE);
  const note = relative.length
    ? `${key}: ${calls(count)}; ${relative.length} relative path${relative.length === 1 ? "" : "s"} resolve against the first root, \`${RELATIVE_BASE}\`: set it to the agent's working directory (everything under it is admitted)`
    : `${key}: ${within.length} director${within.length === 1 ? "y" : "ies"} of the files seen in ${calls(count)}`;
  return { constraint: { path: { within } }, note };
}

/** Free text, not a token: a newline, four or more words, or more than 40 characters. */
function isFreeText(value: string): boolean {
  return /[\n\r]/.test(value) || value.trim().split(/\s+/).length >= 4 || value.length > 40;
}

function learnString(key: string, values: string[], count: number): LearnedConstraint {
  const distinct = [...new Set(values)].sort();
  const longest = Math.max(...values.map((v) => v.length));
  if (distinct.some(isFreeText)) {
    return {
      note: `${key}: free text in ${calls(count)} (${distinct.length} distinct, up to ${longest} characters): no constraint learned`,
    };
  }
  if (distinct.length <= ENUM_MAX) {
    return {
      constraint: { enum: distinct },
      note: `${key}: ${distinct.length === 1 ? "one value" : `one of ${distinct.length} values`} seen in ${calls(count)}`,
    };
  }
  const shape = shapeRegex(distinct);
  if (shape) {
    return {
      constraint: { regex: shape },
      note: `${key}: ${distinct.length} distinct values in ${calls(count)}, more than an enum lists (${ENUM_MAX}): their shape, which admits others like them`,
    };
  }
  return {
    note: `${key}: ${distinct.length} distinct values in ${calls(count)} with no common shape: no constraint learned`,
  };
}

type CharClass = "A" | "a" | "9" | "Aa" | "Aa9";
const CLASS_RE: Record<CharClass, string> = {
  A: "[A-Z]",
  a: "[a-z]",
  "9": "[0-9]",
  Aa: "[A-Za-z]",
  Aa9: "[A-Za-z0-9]",
};

/**
 * A linear-time regex admitting every value, from the runs of character classes they share
 * (`ORD-004211` -> `^[A-Z]{3}-[0-9]{6}$`), trying finer classes first. Undefined when the values
 * have no common shape, contain spaces, or the shape is mostly one wide run (that is not a shape).
 */
export function shapeRegex(values: readonly string[]): string | undefined {
  if (values.some((v) => v.length === 0 || /\s/.test(v))) return undefined;
  for (const level of [0, 1, 2] as const) {
    const shapes = values.map((v) => runs(v, level));
    const first = shapes[0];
    if (!shapes.every((s) => s.length === first.length && s.every((run, i) => run.cls === first[i].cls)))
      continue;
    const parts = first.map((run, i) => {
      const lengths = shapes.map((s) => s[i].length);
      const min = Math.min(...lengths);
      const max = Math.max(...lengths);
      if (run.cls.startsWith("=")) return escapeRegex(run.cls.slice(1)).repeat(1);
      const cls = CLASS_RE[run.cls as CharClass];
      return min === max ? `${cls}{${min}}` : `${cls}{${min},${max}}`;
    });
    // A single run of the widest class says nothing more than "alphanumeric"; still narrower than nothing.
    return `^${parts.join("")}$`;
  }
  return undefined;
}

function runs(value: string, level: 0 | 1 | 2): Array<{ cls: string; length: number }> {
  const out: Array<{ cls: string; length: number }> = [];
  for (const ch of value) {
    let cls: string;
    if (/[A-Z]/.test(ch)) cls = level === 0 ? "A" : level === 1 ? "Aa" : "Aa9";
    else if (/[a-z]/.test(ch)) cls = level === 0 ? "a" : level === 1 ? "Aa" : "Aa9";
    else if (/[0-9]/.test(ch)) cls = level === 2 ? "Aa9" : "9";
    else cls = `=${ch}`;
    const last = out.at(-1);
    // Literal characters are their own runs, so `--` and `-` differ.
    if (last && last.cls === cls && !cls.startsWith("=")) last.length++;
    else out.push({ cls, length: 1 });
  }
  return out;
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
