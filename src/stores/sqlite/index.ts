export type { SqliteStateStoreOptions } from "./sqlite-store.js";
export { SqliteStateStore } from "./sqlite-store.js";
