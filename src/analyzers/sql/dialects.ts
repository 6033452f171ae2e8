/** SQL dialects node-sql-parser ships a grammar for; the name is also its `database` option. */
export const SQL_DIALECTS = [
  "postgresql",
  "mysql",
  "mariadb",
  "sqlite",
  "transactsql",
  "bigquery",
  "snowflake",
  "redshift",
  "trino",
  "athena",
  "hive",
  "db2",
  "flinksql",
  "noql",
] as const;

export type SqlDialect = (typeof SQL_DIALECTS)[number];

/** Schema an unqualified table name resolves to when the policy does not say (`default_schema`). */
export const DEFAULT_SCHEMA: Partial<Record<SqlDialect, string>> = {
  postgresql: "public",
  redshift: "public",
  transactsql: "dbo",
  sqlite: "main",
};
