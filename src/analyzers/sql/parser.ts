import { createRequire } from "node:module";
import vm from "node:vm";
import type { SqlDialect } from "./dialects.js";

type Astify = (sql: string) => unknown;

const require = createRequire(import.meta.url);
const loaded = new Map<SqlDialect, Astify>();

/** Loads (once) the single-dialect grammar of node-sql-parser; throws if the build is missing. */
export function loadDialect(dialect: SqlDialect): Astify {
  let astify = loaded.get(dialect);
  if (!astify) {
    const { Parser } = require(`node-sql-parser/build/${dialect}.js`) as {
      Parser: new () => { astify(sql: string, opt: { database: string }): unknown };
    };
    const parser = new Parser();
    const opt = { database: dialect };
    astify = (sql) => parser.astify(sql, opt);
    loaded.set(dialect, astify);
  }
  return astify;
}

// The grammar backtracks exponentially in the bracket depth on malformed input (`SELECT
// ((((((((((((a` runs for seconds), so a parse that is not provably short runs under a vm
// timeout, which interrupts it synchronously (and costs a watchdog thread, ~0.3 ms, per call).
const context = vm.createContext({ astify: null as Astify | null, input: "" });
const script = new vm.Script("astify(input)");

/** Parses within `timeoutMs`; throws the parser's error, or one with code ERR_SCRIPT_EXECUTION_TIMEOUT. */
export function parseWithTimeout(astify: Astify, sql: string, timeoutMs: number): unknown {
  context.astify = astify;
  context.input = sql;
  try {
    return script.runInContext(context, { timeout: timeoutMs });
  } finally {
    context.input = "";
    context.astify = null;
  }
}

/**
 * Whether a parse may run without the vm timeout: with brackets at most 2 deep and at most 512
 * characters, the slowest parse found (by fuzzing random SQL-like token strings under these bounds,
 * and the known exponential shapes) took ~25-40 ms, well inside a budget of 100 ms or more. Deeper
 * or longer input, or a tighter budget, keeps the timeout.
 */
export function provablyShort(maxDepth: number, length: number, timeoutMs: number): boolean {
  return maxDepth <= 2 && length <= 512 && timeoutMs >= 100;
}

const DML_AFTER_WITH = /^(?:delete|insert|merge)\b/i;
const MAX_SPLICES = 16;

/**
 * Parses `sql` into its statements. The grammar accepts `WITH ...` only before SELECT and
 * UPDATE; PostgreSQL also allows it before DELETE, INSERT and MERGE. When the parser stops at
 * such a keyword right after a complete WITH list, the list (closed by `SELECT 1`) and the
 * statement are parsed apart and joined: the statement gets the list as its `with`, so its CTEs
 * are checked and their names scoped exactly as for `WITH ... SELECT`.
 */
export function parseStatements(
  astify: Astify,
  sql: string,
  timeoutMs: number,
  guarded: boolean,
  splices = 0,
): unknown[] {
  try {
    const ast = guarded ? parseWithTimeout(astify, sql, timeoutMs) : astify(sql);
    return Array.isArray(ast) ? ast : [ast];
  } catch (error) {
    const offset = (error as { location?: { start?: { offset?: unknown } } })?.location?.start?.offset;
    if (typeof offset !== "number" || splices >= MAX_SPLICES) throw error;
    const rest = sql.slice(offset);
    const head = sql.slice(0, offset).trimEnd();
    if (!DML_AFTER_WITH.test(rest) || !head.endsWith(")")) throw error;
    const before = parseStatements(astify, `${head} SELECT 1`, timeoutMs, guarded, splices + 1);
    const closing = before[before.length - 1] as Record<string, unknown> | undefined;
    if (!isWithOnly(closing)) throw error;
    const after = parseStatements(astify, rest, timeoutMs, guarded, splices + 1);
    const main = after[0] as Record<string, unknown> | undefined;
    if (main === undefined || !DML_AFTER_WITH.test(String(main.type)) || main.with) throw error;
    return [...before.slice(0, -1), { ...main, with: closing!.with }, ...after.slice(1)];
  }
}

/** `WITH ... SELECT 1` as built above: a WITH list whose body is exactly the appended `SELECT 1`. */
function isWithOnly(node: Record<string, unknown> | undefined): boolean {
  if (node?.type !== "select" || !Array.isArray(node.with) || node.with.length === 0) return false;
  const columns = node.columns as Array<{ expr?: { type?: unknown; value?: unknown } }> | undefined;
  return (
    node.from == null &&
    node.where == null &&
    node.groupby == null &&
    node._next == null &&
    Array.isArray(columns) &&
    columns.length === 1 &&
    columns[0]?.expr?.type === "number" &&
    columns[0]?.expr?.value === 1
  );
}
