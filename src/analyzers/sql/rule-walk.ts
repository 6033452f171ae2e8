import type { Finding } from "../../core/index.js";
import { FindingList } from "../findings.js";
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
 * row-locking clauses. Both change the database, in every dialect, so both need the `update`
 * category.
 */
export const WRITE_FUNCTIONS: Readonly<Record<string, string>> = {
  nextval: "advances a sequence",
};

/** The category a write inside a read (`FOR UPDATE`, `nextval`) needs. */
export const WRITE_NEEDS = "update";

export type Node = Record<string, unknown>;

export function isNode(value: unknown): value is Node {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const MAX_DEPTH = 1500;

/**
 * What the two parse trees' walkers (node-sql-parser's and PostgreSQL's own) share: the rules a
 * statement, a table, a write and a WHERE clause are held to, and the CTE names in scope. Each
 * walker only knows its tree's shape.
 */
export abstract class RuleWalk extends FindingList {
  private readonly ctes: string[] = [];

  constructor(
    protected readonly rules: SqlRules,
    arg: string,
    out: Finding[],
  ) {
    super(arg, out);
  }

  /** True past the depth bound, reported once: such a query is refused, not half-read. */
  protected tooDeep(depth: number): boolean {
    if (depth <= MAX_DEPTH) return false;
    this.report("sql.unparsable", "query nested too deeply to analyze");
    return true;
  }

  /** A statement of `category`; `nested` when inside another statement. */
  protected category(category: string, nested: boolean) {
    if (this.rules.allowed.has(category)) return;
    const what = `\`${category.toUpperCase()}\``;
    this.report(
      "sql.not_allowed",
      nested
        ? `${what} inside another statement is not allowed`
        : `${what} statements are not allowed (allowed: ${[...this.rules.allowed].join(", ") || "none"})`,
    );
  }

  /** A write that is not a statement of its own (`FOR UPDATE`, `nextval`): it needs `update`. */
  protected write(what: string) {
    if (this.rules.allowed.has(WRITE_NEEDS)) return;
    this.report("sql.not_allowed", `${what}, a write (allow \`${WRITE_NEEDS}\` for it)`);
  }

  /** A function call, by its lower-cased last name part. */
  protected func(name: string) {
    const why = this.rules.dangerous.get(name);
    if (why !== undefined) this.report("sql.dangerous_function", `\`${name}\` ${why}`);
    const write = WRITE_FUNCTIONS[name];
    if (write !== undefined) this.write(`\`${name}\` ${write}`);
  }

  /** `SELECT ... INTO table` creates the table. */
  protected createsTable(name: string) {
    if (!this.rules.allowed.has("create")) {
      this.report("sql.not_allowed", `\`SELECT ... INTO\` creates table \`${preview(name)}\``);
    }
  }

  /** The WHERE clause of an UPDATE or DELETE (`what`), in this tree's own shape. */
  protected where(what: string, where: unknown) {
    if (!this.rules.requireWhere) return;
    if (where === null || where === undefined) {
      this.report("sql.missing_where", `${what} without a WHERE clause`);
    } else if (this.isConstant(where)) {
      this.report("sql.missing_where", `${what} with a constant WHERE clause`);
    } else if (this.hasConstantOrBranch(where)) {
      this.report("sql.missing_where", `${what} whose WHERE clause has an always-constant OR branch`);
    }
  }

  /** True when the expression reads no column, subquery or function: the same for every row. */
  protected abstract isConstant(expr: unknown): boolean;
  /** True when an OR anywhere down the expression has a constant branch. */
  protected abstract hasConstantOrBranch(expr: unknown): boolean;

  /**
   * Visits one CTE's body. Its name is visible to later CTEs and the main body, and to its own
   * body only if RECURSIVE: `WITH secrets AS (SELECT * FROM secrets)` reads the real table.
   * Returns how many names it put in scope, for {@link leaveScope} after the main body.
   */
  protected cte(name: string | undefined, recursive: boolean, visitBody: () => void): number {
    if (name !== undefined && recursive) this.ctes.push(name);
    visitBody();
    if (name !== undefined && !recursive) this.ctes.push(name);
    return name === undefined ? 0 : 1;
  }

  protected leaveScope(scoped: number) {
    this.ctes.length -= scoped;
  }

  /** A table reference whose qualifier parts (database, schema) are under `qualifierKeys`. */
  protected tableIn(node: Node, qualifierKeys: readonly string[], name: string) {
    const parts: string[] = [];
    for (const key of qualifierKeys) {
      const part = node[key];
      if (typeof part === "string" && part !== "") parts.push(part);
    }
    this.table(parts.length > 0 ? parts.join(".") : undefined, name);
  }

  /** A table reference; a CTE in scope is not a table. */
  protected table(qualifier: string | undefined, name: string) {
    if (qualifier === undefined && this.ctes.includes(name.toLowerCase())) return;
    checkTable(this.rules, qualifier, name, (code, message) => this.report(code, message));
  }
}

/**
 * Checks one table reference against `tables.allow` / `tables.deny`: an unqualified name resolves
 * to the implicit catalog (`pg_catalog`) when it is one of its relations, else to the default
 * schema. CTE names are the caller's to skip.
 */
function checkTable(
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
