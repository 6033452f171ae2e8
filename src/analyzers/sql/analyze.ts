import type { Finding } from "../../core/index.js";
import { preview } from "../kind.js";
import { globMatch } from "./glob.js";

/** What a policy decided at load time; the walk only reads it. */
export interface SqlRules {
  /** Statement categories that may run (`ddl` already expanded). */
  allowed: ReadonlySet<string>;
  /** Lower-cased globs; null when every table is allowed. */
  tableAllow: readonly string[] | null;
  tableDeny: readonly string[];
  /** Lower-cased schema an unqualified name resolves to, when known. */
  defaultSchema: string | undefined;
  /** Relations of a schema searched before the default one (`pg_catalog`), by lower-cased name. */
  catalog: { readonly schema: string; readonly relations: ReadonlySet<string> } | undefined;
  requireWhere: boolean;
  /** Lower-cased function name -> why it is dangerous. */
  dangerous: ReadonlyMap<string, string>;
}

/**
 * Writes that are not statements of their own: a sequence function that advances a sequence, and
 * (below) row-locking clauses. Both change the database, in every dialect, so both need the
 * `update` category.
 */
export const WRITE_FUNCTIONS: Readonly<Record<string, string>> = {
  nextval: "advances a sequence",
};

/** SQL Server table hints that take update, exclusive or held locks (`WITH (UPDLOCK)`). */
const LOCK_HINTS = new Set([
  "updlock",
  "xlock",
  "tablock",
  "tablockx",
  "holdlock",
  "serializable",
  "repeatableread",
]);

/** The category a write inside a read (`FOR UPDATE`, `nextval`) needs. */
export const WRITE_NEEDS = "update";

/** node-sql-parser statement `type` -> the category a policy names in `allow`. */
const CATEGORY: Readonly<Record<string, string>> = {
  select: "select",
  insert: "insert",
  replace: "replace",
  update: "update",
  delete: "delete",
  merge: "merge",
  create: "create",
  alter: "alter",
  drop: "drop",
  truncate: "truncate",
  rename: "rename",
  comment: "comment",
  grant: "grant",
  revoke: "revoke",
  set: "set",
  show: "show",
  use: "use",
  desc: "describe",
  describe: "describe",
  explain: "explain",
  transaction: "transaction",
  call: "call",
  exec: "call",
  execute: "call",
  lock: "lock",
  unlock: "lock",
  load_data: "load",
  declare: "declare",
};

// Statement types that can hide inside another statement (a CTE, a subquery, INSERT ... SELECT).
// Not `alter` or `comment`: the parser also uses those types for clauses of ALTER and CREATE.
const NESTED = new Set([
  "insert",
  "replace",
  "update",
  "delete",
  "merge",
  "create",
  "drop",
  "truncate",
  "rename",
  "grant",
  "revoke",
  "call",
  "exec",
  "execute",
  "load_data",
]);

const LITERALS = new Set([
  "number",
  "bool",
  "boolean",
  "null",
  "string",
  "single_quote_string",
  "natural_string",
  "hex_string",
  "full_hex_string",
  "bit_string",
  "date",
  "datetime",
  "time",
  "timestamp",
]);

const MAX_DEPTH = 1500;

type Node = Record<string, unknown>;

function isNode(value: unknown): value is Node {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Checks parsed statements against the rules, pushing one finding per distinct problem. */
export function analyzeStatements(
  statements: readonly unknown[],
  rules: SqlRules,
  arg: string,
  out: Finding[],
) {
  new Walk(rules, arg, out).run(statements);
}

class Walk {
  private readonly ctes: string[] = [];
  private seen: Set<string> | undefined;

  constructor(
    private readonly rules: SqlRules,
    private readonly arg: string,
    private readonly out: Finding[],
  ) {}

  run(statements: readonly unknown[]) {
    for (const statement of statements) {
      if (!isNode(statement) || typeof statement.type !== "string") {
        this.report("sql.unparsable", "unrecognized statement");
        continue;
      }
      this.category(statement.type, false);
      this.visit(statement, 0);
    }
  }

  private report(code: string, message: string) {
    const key = `${code}\u0000${message}`;
    this.seen ??= new Set();
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.out.push({ code, message, arg: this.arg });
  }

  private category(type: string, nested: boolean) {
    const category = CATEGORY[type] ?? type;
    if (this.rules.allowed.has(category)) return;
    const what = `\`${category.toUpperCase()}\``;
    this.report(
      "sql.not_allowed",
      nested
        ? `${what} inside another statement is not allowed`
        : `${what} statements are not allowed (allowed: ${[...this.rules.allowed].join(", ") || "none"})`,
    );
  }

  private visit(value: unknown, depth: number) {
    if (depth > MAX_DEPTH) {
      this.report("sql.unparsable", "query nested too deeply to analyze");
      return;
    }
    if (Array.isArray(value)) {
      for (const item of value) this.visit(item, depth + 1);
      return;
    }
    if (!isNode(value)) return;
    const type = typeof value.type === "string" ? value.type : undefined;
    if (type !== undefined) {
      if (depth > 0 && NESTED.has(type)) this.category(type, true);
      if (type === "function" || type === "aggr_func") this.func(value);
      else if (type === "update" || type === "delete") this.where(type, value.where);
      else if (type === "column_ref" && typeof value.table === "string" && value.table !== "") {
        // Oracle and Snowflake spell a sequence's next value `seq.NEXTVAL`.
        if (typeof value.column === "string" && value.column.toLowerCase() === "nextval")
          this.write(`\`${preview(value.table, 40)}.NEXTVAL\` advances a sequence`);
      } else if (type === "select") {
        if (isNode(value.into)) this.selectInto(value.into);
        if (typeof value.locking_read === "string" && value.locking_read !== "") {
          this.write(`\`${value.locking_read.toUpperCase()}\` locks rows`);
        }
      }
    }
    if (isNode(value.table_hint) && Array.isArray(value.table_hint.expr))
      this.tableHints(value.table_hint.expr);
    if (typeof value.table === "string" && type !== "column_ref" && !("column" in value)) {
      this.tableRef(value);
    }
    if (Array.isArray(value.priv_level)) {
      for (const level of value.priv_level) {
        if (isNode(level) && typeof level.name === "string" && level.name !== "*") {
          this.table(typeof level.prefix === "string" ? level.prefix : undefined, level.name);
        }
      }
    }
    let scoped = 0;
    if (Array.isArray(value.with)) {
      // A CTE's name is visible to later CTEs and the main body, and to its own body only if
      // RECURSIVE: `WITH secrets AS (SELECT * FROM secrets)` reads the real table.
      for (const cte of value.with) {
        const name = isNode(cte) ? cteName(cte.name) : undefined;
        const recursive = isNode(cte) && cte.recursive === true;
        if (name !== undefined && recursive) {
          this.ctes.push(name);
          scoped++;
        }
        this.visit(cte, depth + 1);
        if (name !== undefined && !recursive) {
          this.ctes.push(name);
          scoped++;
        }
      }
    }
    for (const key in value) {
      if (key !== "with") this.visit(value[key], depth + 1);
    }
    this.ctes.length -= scoped;
  }

  private func(node: Node) {
    const name = functionName(node.name);
    if (name === undefined) return;
    const why = this.rules.dangerous.get(name);
    if (why !== undefined) this.report("sql.dangerous_function", `\`${name}\` ${why}`);
    const write = WRITE_FUNCTIONS[name];
    if (write !== undefined) this.write(`\`${name}\` ${write}`);
  }

  private tableHints(hints: unknown[]) {
    for (const hint of hints) {
      const name = isNode(hint) && isNode(hint.expr) ? hint.expr.value : undefined;
      if (typeof name === "string" && LOCK_HINTS.has(name.toLowerCase()))
        this.write(`\`WITH (${name.toUpperCase()})\` locks rows`);
    }
  }

  private write(what: string) {
    if (this.rules.allowed.has(WRITE_NEEDS)) return;
    this.report("sql.not_allowed", `${what}, a write (allow \`${WRITE_NEEDS}\` for it)`);
  }

  private where(type: string, where: unknown) {
    if (!this.rules.requireWhere) return;
    const what = type.toUpperCase();
    if (where === null || where === undefined) {
      this.report("sql.missing_where", `${what} without a WHERE clause`);
    } else if (isConstant(where, 0)) {
      this.report("sql.missing_where", `${what} with a constant WHERE clause`);
    } else if (constantOrBranch(where, 0)) {
      this.report("sql.missing_where", `${what} whose WHERE clause has an always-constant OR branch`);
    }
  }

  private selectInto(into: Node) {
    const target = into.expr;
    if (target === null || target === undefined) return;
    const keyword = typeof into.keyword === "string" ? into.keyword.toLowerCase() : "";
    if (keyword === "outfile" || keyword === "dumpfile") {
      this.report(
        "sql.dangerous_function",
        `\`SELECT ... INTO ${keyword.toUpperCase()}\` writes a server file`,
      );
      return;
    }
    if (keyword === "var" || Array.isArray(target) || (isNode(target) && target.type === "var")) return;
    const name =
      typeof target === "string"
        ? target
        : isNode(target) && typeof target.table === "string"
          ? target.table
          : "";
    if (!this.rules.allowed.has("create")) {
      this.report("sql.not_allowed", `\`SELECT ... INTO\` creates table \`${preview(name)}\``);
    }
    if (typeof target === "string") this.table(undefined, target);
  }

  private tableRef(node: Node) {
    const parts: string[] = [];
    for (const key of ["db", "schema"]) {
      const part = node[key];
      if (typeof part === "string" && part !== "") parts.push(part);
    }
    this.table(parts.length > 0 ? parts.join(".") : undefined, node.table as string);
  }

  private table(qualifier: string | undefined, name: string) {
    if (qualifier === undefined && this.ctes.includes(name.toLowerCase())) return;
    checkTable(this.rules, qualifier, name, (code, message) => this.report(code, message));
  }
}

/**
 * Checks one table reference against `tables.allow` / `tables.deny`: an unqualified name resolves
 * to the implicit catalog (`pg_catalog`) when it is one of its relations, else to the default
 * schema. CTE names are the caller's to skip.
 */
export function checkTable(
  rules: SqlRules,
  qualifier: string | undefined,
  name: string,
  report: (code: string, message: string) => void,
): void {
  const { tableAllow, tableDeny, defaultSchema, catalog } = rules;
  if (tableAllow === null && tableDeny.length === 0) return;
  const lname = name.toLowerCase();
  const full =
    qualifier !== undefined
      ? `${qualifier.toLowerCase()}.${lname}`
      : catalog?.relations.has(lname)
        ? `${catalog.schema}.${lname}`
        : defaultSchema !== undefined
          ? `${defaultSchema}.${lname}`
          : lname;
  const shown = preview(qualifier !== undefined ? `${qualifier}.${name}` : name);
  if (tableDeny.some((pattern) => tableMatches(pattern, lname, full))) {
    report("sql.table_denied", `table \`${shown}\` is denied`);
  } else if (tableAllow !== null && !tableAllow.some((pattern) => tableMatches(pattern, lname, full))) {
    report("sql.table_not_allowed", `table \`${shown}\` is not in the allowed tables`);
  }
}

/** A pattern without a dot names a table in any schema; one with a dot names schema and table. */
function tableMatches(pattern: string, name: string, full: string): boolean {
  return globMatch(pattern, pattern.includes(".") ? full : name);
}

function cteName(name: unknown): string | undefined {
  if (typeof name === "string") return name.toLowerCase();
  if (isNode(name) && typeof name.value === "string") return name.value.toLowerCase();
  return undefined;
}

function functionName(name: unknown): string | undefined {
  if (typeof name === "string") return lastPart(name);
  if (isNode(name) && Array.isArray(name.name) && name.name.length > 0) {
    const last = name.name[name.name.length - 1];
    if (isNode(last) && typeof last.value === "string") return lastPart(last.value);
  }
  return undefined;
}

function lastPart(name: string): string {
  const dot = name.lastIndexOf(".");
  return (dot >= 0 ? name.slice(dot + 1) : name).toLowerCase();
}

/** True when the expression references no column, subquery or function: it is the same for every row. */
function isConstant(expr: unknown, depth: number): boolean {
  if (depth > 100) return false;
  if (!isNode(expr)) return expr === null || typeof expr !== "object";
  const type = expr.type;
  if (typeof type !== "string") return false;
  if (LITERALS.has(type)) return true;
  if (type === "binary_expr") return isConstant(expr.left, depth + 1) && isConstant(expr.right, depth + 1);
  if (type === "unary_expr" || type === "cast") return isConstant(expr.expr, depth + 1);
  if (type === "expr_list") {
    return Array.isArray(expr.value) && expr.value.every((item) => isConstant(item, depth + 1));
  }
  return false;
}

function constantOrBranch(expr: unknown, depth: number): boolean {
  if (depth > 100 || !isNode(expr) || expr.type !== "binary_expr") return false;
  const op = typeof expr.operator === "string" ? expr.operator.toUpperCase() : "";
  if (op !== "OR" && op !== "||") return false;
  return (
    isConstant(expr.left, depth + 1) ||
    isConstant(expr.right, depth + 1) ||
    constantOrBranch(expr.left, depth + 1) ||
    constantOrBranch(expr.right, depth + 1)
  );
}
