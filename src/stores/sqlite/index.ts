export { SqliteStateStore } from "./sqlite-store.js";
export type { SqliteStateStoreOptions } from "./sqlite-store.js";
