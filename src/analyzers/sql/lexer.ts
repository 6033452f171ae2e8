import type { SqlDialect } from "./dialects.js";

/**
 * How the database server (not the parser) reads comments and quotes. node-sql-parser and the
 * servers disagree on a few of these, and every disagreement is a way to hide a statement from
 * the analyzer (MySQL runs `SELECT 1 --1; DROP TABLE t`, the parser sees a comment). So we lex
 * by the server's rules first, blank out comments, and refuse the constructs they disagree on.
 */
interface LexProfile {
  /** `#` starts a comment on the server. */
  hashComment: boolean;
  /** The parser reads `#` as a comment; refused in code when the server does not. */
  parserHashComment: boolean;
  /** `--` opens a comment only before whitespace (MySQL, MariaDB). */
  dashNeedsSpace: boolean;
  /** `//` starts a comment on the server. */
  slashComment: boolean;
  /** The parser reads `//` as a comment; refused in code when the server does not. */
  parserSlashComment: boolean;
  /** `$tag$ ... $tag$` strings (PostgreSQL family); `dollarTags: false` allows only `$$`. */
  dollarQuotes: boolean;
  dollarTags: boolean;
  /** The server quotes identifiers with backticks; elsewhere a backtick is refused. */
  backticks: boolean;
  /** The server quotes identifiers with `[ ]`. */
  brackets: boolean;
  /** The parser lacks `[ ]` identifiers: rewritten to `"..."`, which name the same identifier. */
  bracketsToQuotes: boolean;
  /** `'a' 'b'` is one literal `'ab'` (MySQL); joined for a parser that lacks the rule. */
  adjacentStrings: boolean;
  /** `/*! ... *\/` is executed by the server. */
  execComments: boolean;
  /** `E'...'` strings, in which a backslash always escapes (PostgreSQL). */
  escapeStrings: boolean;
  /**
   * Rewrite PostgreSQL constructs the parser's grammar lacks into ones it reads the same way for
   * analysis: `$1::int` (a cast bind parameter) and `GROUPING SETS (..., ())`.
   */
  pgRewrites: boolean;
}

const base: LexProfile = {
  hashComment: false,
  parserHashComment: false,
  dashNeedsSpace: false,
  slashComment: false,
  parserSlashComment: false,
  dollarQuotes: false,
  dollarTags: false,
  backticks: false,
  brackets: false,
  bracketsToQuotes: false,
  adjacentStrings: false,
  execComments: false,
  escapeStrings: false,
  pgRewrites: false,
};

const mysqlFamily: LexProfile = {
  ...base,
  hashComment: true,
  parserHashComment: true,
  dashNeedsSpace: true,
  backticks: true,
  execComments: true,
  adjacentStrings: true,
};
const postgresFamily: LexProfile = { ...base, dollarQuotes: true, dollarTags: true };

const PROFILES: Record<SqlDialect, LexProfile> = {
  postgresql: { ...postgresFamily, escapeStrings: true, pgRewrites: true },
  redshift: postgresFamily,
  noql: postgresFamily,
  mysql: mysqlFamily,
  mariadb: mysqlFamily,
  bigquery: { ...base, hashComment: true, parserHashComment: true, backticks: true },
  sqlite: { ...base, parserHashComment: true, backticks: true, brackets: true, bracketsToQuotes: true },
  transactsql: { ...base, brackets: true },
  snowflake: { ...base, slashComment: true, parserSlashComment: true, dollarQuotes: true },
  trino: { ...base, parserSlashComment: true },
  athena: { ...base, parserHashComment: true, backticks: true },
  hive: { ...base, parserHashComment: true, backticks: true },
  db2: { ...base, parserHashComment: true },
  flinksql: { ...base, backticks: true },
};

/**
 * The query for the parser (comments blanked, newlines kept, and the dialect's rewrites) and the
 * server's statement count.
 */
export interface LexResult {
  code: string;
  statements: number;
  /** Deepest nesting of `(` and `[` in code (not in strings or comments). */
  maxDepth: number;
  /** Set when the text is ambiguous or malformed; the query must then be refused. */
  error?: string;
}

/**
 * Lexes `sql` by the server's rules of `dialect`. Linear time, no regular expressions.
 * Hand-written because no library lexes by each server's rules, and checking the parser is the point.
 */
export function lexSql(sql: string, dialect: SqlDialect): LexResult {
  const p = PROFILES[dialect];
  const n = sql.length;
  const parts: string[] = [];
  let copied = 0;
  let statements = 0;
  let sawCode = false;
  const fail = (error: string): LexResult => ({ code: "", statements: 0, maxDepth: 0, error });
  const replace = (from: number, to: number, text: string) => {
    parts.push(sql.slice(copied, from), text);
    copied = to;
  };
  const blank = (from: number, to: number) => replace(from, to, sql.slice(from, to).replace(/[^\n]/g, " "));
  // Bracket depth (its maximum bounds the parser's backtracking), and the depth inside which
  // `()` is an empty grouping set.
  let depth = 0;
  let maxDepth = 0;
  let groupingDepth = -1;
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    const next = i + 1 < n ? sql.charCodeAt(i + 1) : 0;
    if (c === 0) return fail("a NUL character");
    // -- comment
    if (c === 45 /* - */ && next === 45) {
      if (p.dashNeedsSpace && i + 2 < n && sql.charCodeAt(i + 2) > 32) {
        return fail("`--` without a following space (a comment for the parser, code for the server)");
      }
      const end = lineEnd(sql, i);
      blank(i, end);
      i = end;
      continue;
    }
    if (c === 35 /* # */) {
      if (p.hashComment) {
        const end = lineEnd(sql, i);
        blank(i, end);
        i = end;
        continue;
      }
      if (p.parserHashComment) return fail("`#` (a comment for the parser, code for the server)");
    }
    if (c === 47 /* / */ && next === 47) {
      if (p.slashComment) {
        const end = lineEnd(sql, i);
        blank(i, end);
        i = end;
        continue;
      }
      if (p.parserSlashComment) return fail("`//` (a comment for the parser, code for the server)");
    }
    if (c === 47 && next === 42 /* * */) {
      const close = sql.indexOf("*/", i + 2);
      if (close < 0) return fail("an unterminated /* comment");
      const third = sql.charCodeAt(i + 2);
      if (
        p.execComments &&
        (third === 33 /* ! */ || (third === 77 /* M */ && sql.charCodeAt(i + 3) === 33))
      ) {
        return fail("an executable /*! comment");
      }
      if (sql.lastIndexOf("/*", close) > i) return fail("a nested /* comment");
      blank(i, close + 2);
      i = close + 2;
      continue;
    }
    if (c === 39 /* ' */ || c === 34 /* " */ || (c === 96 /* ` */ && p.backticks)) {
      // E'...' reads backslashes as escapes whatever standard_conforming_strings says, so it has
      // one reading (the parser's grammar escapes the same two-character sequences).
      const escapes =
        c === 39 &&
        p.escapeStrings &&
        (sql.charCodeAt(i - 1) | 32) === 101 /* e */ &&
        !isIdentChar(sql.charCodeAt(i - 2));
      let end = escapes ? scanQuoted(sql, i, c, true) : quotedEnd(sql, i, c);
      if (end < 0) return fail(end === -1 ? "an unterminated quote" : AMBIGUOUS_BACKSLASH);
      sawCode = true;
      // `'a' 'b'`: the next literal continues this one; drop the closing quote, the space and
      // the next opening quote.
      while (c === 39 && p.adjacentStrings) {
        let j = end;
        while (j < n && isSpace(sql.charCodeAt(j))) j++;
        if (j === end || sql.charCodeAt(j) !== 39) break;
        const next = quotedEnd(sql, j, 39);
        if (next < 0) return fail(next === -1 ? "an unterminated quote" : AMBIGUOUS_BACKSLASH);
        replace(end - 1, j + 1, "");
        end = next;
      }
      i = end;
      continue;
    }
    if (c === 96) return fail("a backtick (not a quote for this server)");
    if (c === 91 /* [ */ && p.brackets) {
      const end = quotedEnd(sql, i, 93 /* ] */);
      if (end < 0) return fail(end === -1 ? "an unterminated [identifier]" : AMBIGUOUS_BACKSLASH);
      sawCode = true;
      if (p.bracketsToQuotes) {
        const name = sql
          .slice(i + 1, end - 1)
          .replaceAll("]]", "]")
          .replaceAll('"', '""');
        replace(i, end, `"${name}"`);
      }
      i = end;
      continue;
    }
    if (c === 36 /* $ */ && p.dollarQuotes && !isIdentChar(sql.charCodeAt(i - 1))) {
      const tagEnd = dollarTagEnd(sql, i, p.dollarTags);
      if (tagEnd > 0) {
        const close = sql.indexOf(sql.slice(i, tagEnd), tagEnd);
        if (close < 0) return fail("an unterminated $$ string");
        sawCode = true;
        i = close + (tagEnd - i);
        continue;
      }
    }
    if (p.pgRewrites && c === 36 /* $ */ && !isIdentChar(sql.charCodeAt(i - 1))) {
      // `$1::int[]`: the grammar reads a cast only after a column, so the parameter becomes a
      // column name of the same length (`_1`), which is a value like the parameter is.
      let j = i + 1;
      while (j < n && sql.charCodeAt(j) >= 48 && sql.charCodeAt(j) <= 57) j++;
      if (j > i + 1 && sql.startsWith("::", j)) replace(i, i + 1, "_");
    } else if (p.pgRewrites && (c | 32) === 103 /* g */ && !isIdentChar(sql.charCodeAt(i - 1))) {
      const sets = groupingSets(sql, i);
      if (sets > 0) {
        // `GROUPING SETS (` becomes the call `GROUPING_SETS(`, whose `()` become `(0)`.
        replace(i + 8, sets, "_".repeat(sets - i - 8));
        groupingDepth = depth + 1;
      }
    } else if (c === 40 /* ( */ || c === 91 /* [ */) {
      if (c === 40 && groupingDepth >= 0 && depth >= groupingDepth) {
        let j = i + 1;
        while (j < n && sql.charCodeAt(j) <= 32) j++;
        if (sql.charCodeAt(j) === 41 /* ) */) {
          replace(i, j + 1, "(0)");
          sawCode = true;
          i = j + 1;
          continue;
        }
      }
      depth++;
      if (depth > maxDepth) maxDepth = depth;
    } else if (c === 41 /* ) */ || c === 93 /* ] */) {
      depth--;
      if (depth < groupingDepth) groupingDepth = -1;
    }
    if (c === 59 /* ; */) {
      if (sawCode) statements++;
      sawCode = false;
      depth = 0;
      groupingDepth = -1;
    } else if (c > 32) {
      sawCode = true;
    }
    i++;
  }
  if (sawCode) statements++;
  if (copied === 0) return { code: sql, statements, maxDepth };
  parts.push(sql.slice(copied));
  return { code: parts.join(""), statements, maxDepth };
}

const AMBIGUOUS_BACKSLASH =
  "a backslash before a quote (servers with and without backslash escapes read it differently)";

/** `GROUPING <spaces> SETS` at `i` (any case): where `SETS` starts, else 0. */
function groupingSets(sql: string, i: number): number {
  if (sql.slice(i, i + 8).toLowerCase() !== "grouping") return 0;
  let j = i + 8;
  while (j < sql.length && sql.charCodeAt(j) <= 32) j++;
  if (j === i + 8 || sql.slice(j, j + 4).toLowerCase() !== "sets" || isIdentChar(sql.charCodeAt(j + 4)))
    return 0;
  return j;
}

function lineEnd(sql: string, from: number): number {
  for (let i = from; i < sql.length; i++) {
    const c = sql.charCodeAt(i);
    if (c === 10 || c === 13) return i;
  }
  return sql.length;
}

/**
 * End (exclusive) of the quoted token opening at `start`, read both with and without backslash
 * escapes; -1 when unterminated, -2 when the two readings disagree.
 */
function quotedEnd(sql: string, start: number, open: number): number {
  const close = open === 91 ? 93 : open;
  const plain = scanQuoted(sql, start, close, false);
  const escaped = scanQuoted(sql, start, close, true);
  if (plain < 0 || escaped < 0) return -1;
  return plain === escaped ? plain : -2;
}

function scanQuoted(sql: string, start: number, close: number, backslash: boolean): number {
  for (let i = start + 1; i < sql.length; i++) {
    const c = sql.charCodeAt(i);
    if (backslash && c === 92) {
      i++;
    } else if (c === close) {
      if (sql.charCodeAt(i + 1) === close) i++;
      else return i + 1;
    }
  }
  return -1;
}

function isIdentChar(c: number): boolean {
  return (
    (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 36 || c >= 128
  );
}

/** End of a `$tag$` opener at `i`, or 0 if there is none. */
function dollarTagEnd(sql: string, i: number, tags: boolean): number {
  let j = i + 1;
  if (tags) {
    const first = sql.charCodeAt(j);
    if (!(first >= 48 && first <= 57)) {
      while (j < sql.length && isIdentChar(sql.charCodeAt(j)) && sql.charCodeAt(j) !== 36) j++;
    }
  }
  return sql.charCodeAt(j) === 36 ? j + 1 : 0;
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13;
}
