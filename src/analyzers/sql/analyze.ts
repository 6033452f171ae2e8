import type { Finding } from "../../core/index.js";
import { preview } from "../kind.js";
import { isNode, type Node, RuleWalk, type SqlRules } from "./rule-walk.js";

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

/** Checks parsed statements against the rules, pushing one finding per distinct problem. */
export function analyzeStatements(
  statements: readonly unknown[],
  rules: SqlRules,
  arg: string,
  out: Finding[],
) {
  new Walk(rules, arg, out).run(statements);
}

class Walk extends RuleWalk {
  run(statements: readonly unknown[]) {
    for (const statement of statements) {
      if (!isNode(statement) || typeof statement.type !== "string") {
        this.report("sql.unparsable", "unrecognized statement");
        continue;
      }
      this.category(CATEGORY[statement.type] ?? statement.type, false);
      this.visit(statement, 0);
    }
  }

  private visit(value: unknown, depth: number) {
    if (this.tooDeep(depth)) return;
    if (Array.isArray(value)) {
      for (const item of value) this.visit(item, depth + 1);
      return;
    }
    if (!isNode(value)) return;
    const type = typeof value.type === "string" ? value.type : undefined;
    if (type !== undefined) {
      if (depth > 0 && NESTED.has(type)) this.category(CATEGORY[type] ?? type, true);
      if (type === "function" || type === "aggr_func") {
        const name = functionName(value.name);
        if (name !== undefined) this.func(name);
      } else if (type === "update" || type === "delete") this.where(type.toUpperCase(), value.where);
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
      this.tableIn(value, ["db", "schema"], value.table);
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
      for (const cte of value.with) {
        const name = isNode(cte) ? cteName(cte.name) : undefined;
        scoped += this.cte(name, isNode(cte) && cte.recursive === true, () => this.visit(cte, depth + 1));
      }
    }
    for (const key in value) {
      if (key !== "with") this.visit(value[key], depth + 1);
    }
    this.leaveScope(scoped);
  }

  private tableHints(hints: unknown[]) {
    for (const hint of hints) {
      const name = isNode(hint) && isNode(hint.expr) ? hint.expr.value : undefined;
      if (typeof name === "string" && LOCK_HINTS.has(name.toLowerCase()))
        this.write(`\`WITH (${name.toUpperCase()})\` locks rows`);
    }
  }

  protected isConstant(expr: unknown): boolean {
    return isConstant(expr, 0);
  }

  protected hasConstantOrBranch(expr: unknown): boolean {
    return constantOrBranch(expr, 0);
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
    this.createsTable(name);
    if (typeof target === "string") this.table(undefined, target);
  }

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
