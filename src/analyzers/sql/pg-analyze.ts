import type { Finding } from "../../core/index.js";
import { preview } from "../kind.js";
import { isNode, type Node, RuleWalk, type SqlRules } from "./rule-walk.js";

/*
 * Decides on the tree PostgreSQL itself builds (libpg-query's JSON: a node is `{TypeName:
 * {fields}}`, some fields hold a bare node such as a RangeVar). Every statement type maps to a
 * category; one the table does not know is named after its type (`VacuumStmt` -> `vacuum`), so it
 * is refused unless a policy could allow it: nothing new in the grammar passes by default.
 */

const CATEGORY: Readonly<Record<string, string>> = {
  SelectStmt: "select",
  InsertStmt: "insert",
  UpdateStmt: "update",
  DeleteStmt: "delete",
  MergeStmt: "merge",
  TruncateStmt: "truncate",
  RenameStmt: "rename",
  CommentStmt: "comment",
  VariableSetStmt: "set",
  VariableShowStmt: "show",
  ExplainStmt: "explain",
  TransactionStmt: "transaction",
  CallStmt: "call",
  ExecuteStmt: "call",
  DoStmt: "call",
  LockStmt: "lock",
  DeclareCursorStmt: "declare",
  LoadStmt: "load",
  CopyStmt: "copy",
  ViewStmt: "create",
  IndexStmt: "create",
  DefineStmt: "create",
  RuleStmt: "create",
  CompositeTypeStmt: "create",
  DropStmt: "drop",
  DropOwnedStmt: "drop",
  ReassignOwnedStmt: "alter",
  RefreshMatViewStmt: "alter",
  SecLabelStmt: "alter",
  ClusterStmt: "alter",
  ReindexStmt: "alter",
  ImportForeignSchemaStmt: "create",
};

/** Statement types whose category counts when nested (a CTE, EXPLAIN, PREPARE, COPY (query)). */
function categoryOf(type: string, fields: Node): string {
  if (type === "GrantStmt" || type === "GrantRoleStmt") return fields.is_grant === false ? "revoke" : "grant";
  const known = CATEGORY[type];
  if (known !== undefined) return known;
  if (type.startsWith("Create")) return "create";
  if (type.startsWith("Alter")) return "alter";
  if (type.startsWith("Drop")) return "drop";
  return type.replace(/Stmt$/, "").toLowerCase();
}

/** Checks the statements libpg-query parsed against the rules, one finding per distinct problem. */
export function analyzePgStatements(
  statements: readonly unknown[],
  rules: SqlRules,
  arg: string,
  out: Finding[],
) {
  const walk = new PgWalk(rules, arg, out);
  for (const statement of statements) walk.statement(statement);
}

class PgWalk extends RuleWalk {
  statement(statement: unknown) {
    const type = isNode(statement) ? Object.keys(statement)[0] : undefined;
    if (type === undefined || !type.endsWith("Stmt")) {
      this.report("sql.unparsable", "unrecognized statement");
      return;
    }
    this.visit(statement, 0, false);
  }

  /** `nested`: inside a statement already categorised (only writes count there, not SELECT). */
  private visit(value: unknown, depth: number, nested: boolean) {
    if (this.tooDeep(depth)) return;
    if (Array.isArray(value)) {
      for (const item of value) this.visit(item, depth + 1, nested);
      return;
    }
    if (!isNode(value)) return;
    if (typeof value.relname === "string") this.tableIn(value, ["catalogname", "schemaname"], value.relname);
    // SELECT's clauses, also on the bare SelectStmt of a UNION arm.
    if (isNode(value.intoClause)) this.selectInto(value.intoClause);
    if (Array.isArray(value.lockingClause) && value.lockingClause.length > 0) {
      this.write("`SELECT ... FOR UPDATE/SHARE` locks rows");
    }
    const withClause = value.withClause;
    const scoping = isNode(withClause) && Array.isArray(withClause.ctes);
    const scoped = scoping ? this.withList(withClause, depth, nested) : 0;
    for (const key in value) {
      if (key === "withClause" && scoping) continue;
      const child = value[key];
      if (key.endsWith("Stmt") && isNode(child)) this.stmt(key, child, depth, nested);
      else if (key === "FuncCall" && isNode(child)) this.funcCall(child, depth);
      else this.visit(child, depth + 1, nested);
    }
    this.leaveScope(scoped);
  }

  private withList(withClause: Node, depth: number, nested: boolean): number {
    const recursive = withClause.recursive === true;
    let scoped = 0;
    for (const item of withClause.ctes as unknown[]) {
      const cte = isNode(item) && isNode(item.CommonTableExpr) ? item.CommonTableExpr : undefined;
      const name = typeof cte?.ctename === "string" ? cte.ctename.toLowerCase() : undefined;
      scoped += this.cte(name, recursive, () => this.visit(item, depth + 1, nested));
    }
    return scoped;
  }

  private stmt(type: string, fields: Node, depth: number, nested: boolean) {
    // PREPARE is as safe as the statement it names; that statement is checked in its place.
    if (type !== "PrepareStmt") {
      const category = categoryOf(type, fields);
      if (!nested || category !== "select") this.category(category, nested);
    }
    switch (type) {
      case "UpdateStmt":
      case "DeleteStmt":
        this.where(type === "UpdateStmt" ? "UPDATE" : "DELETE", fields.whereClause);
        break;
      case "CopyStmt":
        if (fields.is_program === true) {
          this.report("sql.dangerous_function", "`COPY ... PROGRAM` runs a program on the server");
        } else if (typeof fields.filename === "string") {
          this.report(
            "sql.dangerous_function",
            `\`COPY ... ${fields.is_from === true ? "FROM" : "TO"} '${preview(fields.filename, 40)}'\` ${fields.is_from === true ? "reads" : "writes"} a server file`,
          );
        }
        break;
      case "DoStmt":
        this.report("sql.dangerous_function", "`DO` runs procedural code");
        break;
      case "LoadStmt":
        this.report("sql.dangerous_function", "`LOAD` loads a shared library into the server");
        break;
    }
    this.visit(fields, depth + 1, true);
  }

  private funcCall(call: Node, depth: number) {
    const name = funcName(call.funcname);
    if (name !== undefined) this.func(name);
    this.visit(call, depth + 1, true);
  }

  private selectInto(into: Node) {
    const rel = isNode(into.rel) ? into.rel : undefined;
    this.createsTable(typeof rel?.relname === "string" ? rel.relname : "");
  }

  protected isConstant(expr: unknown): boolean {
    return isConstant(expr, 0);
  }

  protected hasConstantOrBranch(expr: unknown): boolean {
    return constantOrBranch(expr, 0);
  }
}

function funcName(names: unknown): string | undefined {
  if (!Array.isArray(names) || names.length === 0) return undefined;
  const last = names[names.length - 1];
  const sval = isNode(last) && isNode(last.String) ? last.String.sval : undefined;
  return typeof sval === "string" ? sval.toLowerCase() : undefined;
}

/** The single `{Type: fields}` of a node, or undefined. */
function unwrap(expr: unknown): [string, Node] | undefined {
  if (!isNode(expr)) return undefined;
  for (const key in expr) {
    const fields = expr[key];
    return isNode(fields) ? [key, fields] : undefined;
  }
  return undefined;
}

/** True when the expression reads no column, subquery or function: it is the same for every row. */
function isConstant(expr: unknown, depth: number): boolean {
  if (depth > 100) return false;
  if (Array.isArray(expr)) return expr.every((item) => isConstant(item, depth + 1));
  const node = unwrap(expr);
  if (node === undefined) return false;
  const [type, fields] = node;
  switch (type) {
    case "A_Const":
    case "ParamRef":
    case "SQLValueFunction":
      return true;
    case "TypeCast":
    case "NullTest":
    case "BooleanTest":
      return isConstant(fields.arg, depth + 1);
    case "A_Expr":
      return (
        (fields.lexpr === undefined || isConstant(fields.lexpr, depth + 1)) &&
        (fields.rexpr === undefined || isConstant(fields.rexpr, depth + 1))
      );
    case "BoolExpr":
    case "CoalesceExpr":
      return Array.isArray(fields.args) && fields.args.every((item) => isConstant(item, depth + 1));
    case "List":
    case "A_ArrayExpr":
      return Array.isArray(fields.items ?? fields.elements)
        ? ((fields.items ?? fields.elements) as unknown[]).every((item) => isConstant(item, depth + 1))
        : true;
    default:
      return false;
  }
}

function constantOrBranch(expr: unknown, depth: number): boolean {
  const node = unwrap(expr);
  if (depth > 100 || node === undefined || node[0] !== "BoolExpr") return false;
  const args = Array.isArray(node[1].args) ? node[1].args : [];
  if (node[1].boolop === "OR_EXPR" && args.some((item) => isConstant(item, depth + 1))) return true;
  return node[1].boolop === "OR_EXPR" && args.some((item) => constantOrBranch(item, depth + 1));
}
