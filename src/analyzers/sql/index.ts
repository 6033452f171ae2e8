export { SQL_DIALECTS } from "./dialects.js";
export type { SqlDialect } from "./dialects.js";
export { DANGEROUS_FUNCTIONS } from "./functions.js";
export { SQL_CATEGORIES, sqlKind, sqlOptions } from "./sql-kind.js";
export type { SqlOptions } from "./sql-kind.js";
