import { z } from "zod";
import type { ArgCheck, ConstraintKind } from "../kind.js";
import { analyzeStatements } from "./analyze.js";
import type { SqlRules } from "./rule-walk.js";
import { DEFAULT_SCHEMA, IMPLICIT_CATALOG, SQL_DIALECTS } from "./dialects.js";
import { DANGEROUS_FUNCTIONS } from "./functions.js";
import { lexSql } from "./lexer.js";
import { loadDialect, parseStatements, provablyShort } from "./parser.js";
import { analyzePgStatements } from "./pg-analyze.js";
import { loadPgParser, PgParserNotLoaded, parsePg, pgReady } from "./pg-parser.js";

/** Statement categories a policy can allow; `ddl` stands for create, alter, drop, truncate, rename, comment. */
export const SQL_CATEGORIES = [
  "select",
  "insert",
  "update",
  "delete",
  "replace",
  "merge",
  "ddl",
  "create",
  "alter",
  "drop",
  "truncate",
  "rename",
  "comment",
  "grant",
  "revoke",
  "set",
  "show",
  "use",
  "describe",
  "explain",
  "transaction",
  "call",
  "lock",
  "load",
  "declare",
  "copy",
] as const;

const DDL = ["create", "alter", "drop", "truncate", "rename", "comment"];

const names = z.array(z.string().min(1));

/** Options of `sql: { ... }` under `tools.<tool>.args.<arg>`. */
export const sqlOptions = z
  .object({
    /** Statement categories that may run; default `[select]`. */
    allow: z.array(z.enum(SQL_CATEGORIES)).optional(),
    /** Grammar and lexing rules; default `postgresql`. */
    dialect: z.enum(SQL_DIALECTS).optional(),
    /** Table globs, case-insensitive; a pattern with a dot is matched against `schema.table`. */
    tables: z.object({ allow: names.optional(), deny: names.optional() }).strict().optional(),
    /** Schema an unqualified name belongs to; default `public` (PostgreSQL), `dbo`, `main`, or none. */
    default_schema: z.string().min(1).optional(),
    /** UPDATE and DELETE need a WHERE that is not constant; default true. */
    require_where: z.boolean().optional(),
    max_statements: z.number().int().positive().optional(),
    /** Adjust the built-in list of dangerous functions. */
    functions: z.object({ allow: names.optional(), deny: names.optional() }).strict().optional(),
    /** Longest query analyzed, in UTF-16 units; default 100000. */
    max_length: z.number().int().positive().max(1_000_000).optional(),
    /** Parse time budget in ms (wall clock, so generous); default 1000. */
    timeout_ms: z.number().int().positive().max(10_000).optional(),
  })
  .strict();

export type SqlOptions = z.infer<typeof sqlOptions>;

/**
 * `sql: { allow: [select], dialect: postgresql }`: the argument is SQL whose every statement
 * (stacked, nested in CTEs and subqueries) is of an allowed category, touches allowed tables and
 * calls no dangerous function; row locks (`FOR UPDATE`) and `nextval` are writes that need
 * `update`. The `postgresql` dialect is parsed by PostgreSQL's own grammar (libpg-query, WASM);
 * the others by node-sql-parser after a lexing pass by the server's rules. What cannot be parsed,
 * or could be read two ways, is `sql.unparsable`.
 *
 * The WASM parser loads asynchronously. A policy compiled asynchronously (`compilePolicyFileAsync`,
 * `await warden.ready()`, every CLI command) waits for it. A policy compiled synchronously starts
 * the load; a call checked before it has finished (the first few milliseconds of a process) fails
 * closed with `sql.unparsable` saying so, rather than falling back to a grammar that reads
 * PostgreSQL differently.
 */
export const sqlKind: ConstraintKind<SqlOptions> = {
  kind: "sql",
  summary: "SQL whose statements, tables and functions the policy allows",
  options: sqlOptions,
  compile(options) {
    return compileSql(options, (options.dialect ?? "postgresql") === "postgresql");
  },
  load(options) {
    return (options.dialect ?? "postgresql") === "postgresql" ? loadPgParser() : Promise.resolve();
  },
};

/**
 * Compiles the check; `realPostgres` picks libpg-query for the `postgresql` dialect (false: the
 * node-sql-parser grammar, kept for the bench's before/after comparison).
 */
export function compileSql(options: SqlOptions, realPostgres: boolean): ArgCheck {
  const dialect = options.dialect ?? "postgresql";
  const pg = realPostgres && dialect === "postgresql";
  if (pg) void loadPgParser();
  const astify = pg ? undefined : loadDialect(dialect);
  const allowed = new Set<string>();
  for (const category of options.allow ?? ["select"]) {
    if (category === "ddl") for (const c of DDL) allowed.add(c);
    else allowed.add(category);
  }
  const dangerous = new Map(Object.entries(DANGEROUS_FUNCTIONS));
  for (const name of options.functions?.allow ?? []) dangerous.delete(name.toLowerCase());
  for (const name of options.functions?.deny ?? [])
    dangerous.set(name.toLowerCase(), "is denied by the policy");
  const lower = (patterns: string[] | undefined) => patterns?.map((p) => p.toLowerCase());
  const rules: SqlRules = {
    allowed,
    tableAllow: lower(options.tables?.allow) ?? null,
    tableDeny: lower(options.tables?.deny) ?? [],
    defaultSchema: (options.default_schema ?? DEFAULT_SCHEMA[dialect])?.toLowerCase(),
    catalog: IMPLICIT_CATALOG[dialect],
    requireWhere: options.require_where ?? true,
    dangerous,
  };
  const maxLength = options.max_length ?? 100_000;
  const timeoutMs = options.timeout_ms ?? 1000;
  const maxStatements = options.max_statements ?? Number.POSITIVE_INFINITY;

  const check: ArgCheck = (value, arg, out) => {
    const unparsable = (message: string): void => {
      out.push({ code: "sql.unparsable", message, arg });
    };
    if (typeof value !== "string") return unparsable("expected SQL text");
    if (value.length > maxLength)
      return unparsable(`query of ${value.length} characters is over ${maxLength}`);
    if (pg) return checkPg(value, arg, out);
    try {
      const lexed = lexSql(value, dialect);
      if (lexed.error !== undefined) return unparsable(`ambiguous SQL: ${lexed.error}`);
      if (lexed.statements === 0) return;
      let statements: unknown[];
      try {
        const guarded = !provablyShort(lexed.maxDepth, lexed.code.length, timeoutMs);
        statements = parseStatements(astify!, lexed.code, timeoutMs, guarded);
      } catch (error) {
        return unparsable(parseError(error, dialect, timeoutMs));
      }
      if (statements.length < lexed.statements) {
        return unparsable(
          `the parser read ${statements.length} statements where the server reads ${lexed.statements}`,
        );
      }
      if (statements.length > maxStatements) {
        out.push({
          code: "sql.too_many_statements",
          message: `${statements.length} statements, at most ${maxStatements} allowed`,
          arg,
        });
      }
      analyzeStatements(statements, rules, arg, out);
    } catch (error) {
      unparsable(`could not analyze the query: ${describe(error)}`);
    }
  };
  const checkPg: ArgCheck = (value, arg, out) => {
    const sql = value as string;
    // Text another reader takes differently from this server's defaults: a backslash before a
    // quote (standard_conforming_strings off), a nested /* comment (PostgreSQL nests them;
    // drivers, proxies and log scrubbers do not), a NUL (the C parser stops there). The
    // server-rules lexer finds these; it runs only when such a character is present.
    if (AMBIGUOUS_TRIGGER.test(sql)) {
      const lexed = lexSql(sql, "postgresql");
      if (lexed.error !== undefined) {
        out.push({ code: "sql.unparsable", message: `ambiguous SQL: ${lexed.error}`, arg });
        return;
      }
      if (lexed.statements === 0) return;
    }
    if (sql.trim() === "") return;
    let statements: unknown[];
    try {
      statements = parsePg(sql);
    } catch (error) {
      const message =
        error instanceof PgParserNotLoaded
          ? error.message
          : `not valid postgresql SQL: ${describe(error)}${pgPosition(error, sql)}`;
      out.push({ code: "sql.unparsable", message, arg });
      return;
    }
    if (statements.length > maxStatements) {
      out.push({
        code: "sql.too_many_statements",
        message: `${statements.length} statements, at most ${maxStatements} allowed`,
        arg,
      });
    }
    try {
      analyzePgStatements(statements, rules, arg, out);
    } catch (error) {
      out.push({ code: "sql.unparsable", message: `could not analyze the query: ${describe(error)}`, arg });
    }
  };
  const checkCached = cached(check);
  // Until the parser has loaded, decisions are not cached: they would outlive the load.
  return pg
    ? (value, arg, out) => (pgReady() ? checkCached(value, arg, out) : check(value, arg, out))
    : checkCached;
}

const CACHE_ENTRIES = 256;
const CACHE_MAX_LENGTH = 2048;

/**
 * The decision is a function of the query text alone (the options are fixed per compiled check),
 * so the findings of the last 256 distinct queries of up to 2 KB are kept, least recently used
 * first out: an agent repeating a query pays a map lookup instead of a parse.
 */
function cached(check: ArgCheck): ArgCheck {
  const seen = new Map<string, ReadonlyArray<{ code: string; message: string }>>();
  return (value, arg, out) => {
    if (typeof value !== "string" || value.length > CACHE_MAX_LENGTH) return check(value, arg, out);
    const found = seen.get(value);
    if (found !== undefined) {
      seen.delete(value);
      seen.set(value, found);
      for (const { code, message } of found) out.push({ code, message, arg });
      return;
    }
    const start = out.length;
    check(value, arg, out);
    seen.set(
      value,
      out.slice(start).map(({ code, message }) => ({ code, message })),
    );
    if (seen.size > CACHE_ENTRIES) seen.delete(seen.keys().next().value as string);
  };
}

const AMBIGUOUS_TRIGGER = /[\\\u0000]|\/\*/;

function pgPosition(error: unknown, sql: string): string {
  const position = (error as { sqlDetails?: { cursorPosition?: unknown } })?.sqlDetails?.cursorPosition;
  if (typeof position !== "number") return "";
  const before = sql.slice(0, position);
  const line = before.split("\n").length;
  return ` at ${line}:${position - before.lastIndexOf("\n")}`;
}

function parseError(error: unknown, dialect: string, timeoutMs: number): string {
  const e = error as { code?: unknown; location?: { start?: { line?: number; column?: number } } };
  if (e?.code === "ERR_SCRIPT_EXECUTION_TIMEOUT") return `parsing took longer than ${timeoutMs} ms`;
  const at = e?.location?.start;
  const where = at?.line !== undefined ? ` at ${at.line}:${at.column}` : "";
  return `not valid ${dialect} SQL${where}`;
}

function describe(error: unknown): string {
  const message = (error as { message?: unknown })?.message;
  return typeof message === "string" ? message.slice(0, 120) : "internal error";
}
