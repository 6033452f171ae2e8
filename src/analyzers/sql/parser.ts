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

// The grammar backtracks exponentially on some malformed input (`SELECT ((((((((((((a` runs for
// seconds), so every parse runs under a vm timeout, which interrupts it synchronously.
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
