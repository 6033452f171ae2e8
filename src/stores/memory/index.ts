export { MemoryStateStore } from "./memory-store.js";
export type { MemoryStateStoreOptions } from "./memory-store.js";
