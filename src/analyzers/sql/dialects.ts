import { PG_CATALOG_RELATIONS } from "./catalog.js";

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

/** A schema the server searches before the default one, with its relations (`pg_catalog`). */
export const IMPLICIT_CATALOG: Partial<
  Record<SqlDialect, { readonly schema: string; readonly relations: ReadonlySet<string> }>
> = {
  postgresql: { schema: "pg_catalog", relations: PG_CATALOG_RELATIONS },
  redshift: { schema: "pg_catalog", relations: PG_CATALOG_RELATIONS },
};
