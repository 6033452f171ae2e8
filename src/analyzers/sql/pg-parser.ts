/*
 * The PostgreSQL server's own grammar (libpg-query: the parser of PostgreSQL 18 compiled to
 * WASM). It is an LALR parser: linear in the query, no backtracking, so it needs no timeout.
 * The WASM module loads asynchronously (~10 ms) and only when a policy uses the `postgresql`
 * dialect, so `import { Warden } from "toolwarden"` does not pay for it.
 */

import { missingPackageError } from "../../core/optional.js";

type ParseSync = (query: string) => { stmts?: Array<{ stmt?: unknown }> };

let parseSync: ParseSync | undefined;
let loading: Promise<void> | undefined;
let loadError: string | undefined;

/** Starts loading the parser (once) and resolves when it can parse; never rejects. */
export function loadPgParser(): Promise<void> {
  loading ??= (async () => {
    try {
      const module = (await import("libpg-query")) as unknown as {
        loadModule(): Promise<void>;
        parseSync: ParseSync;
      };
      await module.loadModule();
      parseSync = module.parseSync;
    } catch (error) {
      const named = missingPackageError(error, "libpg-query", "the `postgresql` SQL dialect");
      loadError = (named as Error)?.message ?? String(error);
    }
  })();
  return loading;
}

/** Whether `parsePg` can run now. */
export function pgReady(): boolean {
  return parseSync !== undefined;
}

/**
 * The statements of `sql` as the server reads them, or throws: a syntax error (an Error with
 * `sqlDetails.cursorPosition`), or `PgParserNotLoaded` when the WASM module has not finished
 * loading (the policy was compiled synchronously and this call came first).
 */
export function parsePg(sql: string): unknown[] {
  if (parseSync === undefined) throw new PgParserNotLoaded(loadError);
  const result = parseSync(sql);
  return (result.stmts ?? []).map((entry) => entry.stmt);
}

/** The parser is not usable yet (still loading) or failed to load. */
export class PgParserNotLoaded extends Error {
  constructor(cause: string | undefined) {
    super(
      cause === undefined
        ? "the PostgreSQL parser is still loading: compile the policy asynchronously (compilePolicyFileAsync, or await warden.ready()) so the first call is decided on the real grammar"
        : `the PostgreSQL parser failed to load: ${cause.replace("\n", "; ").slice(0, 200)}`,
    );
  }
}
