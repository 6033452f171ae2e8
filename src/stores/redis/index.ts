export type { RedisStateStoreOptions } from "./redis-store.js";
export { RedisStateStore } from "./redis-store.js";
