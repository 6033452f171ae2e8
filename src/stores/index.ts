export { createStateStore } from "./create.js";
export { MemoryStateStore } from "./memory/index.js";
export type { MemoryStateStoreOptions } from "./memory/index.js";
export type {
  Approval,
  ApprovalStatus,
  LimitBucket,
  LimitTrip,
  SpendRequest,
  SpendResult,
  StateStore,
} from "./types.js";
export {
  DEFAULT_STORE_TIMEOUT_MS,
  isGuarded,
  StoreUnavailableError,
  withDeadline,
  withStoreDeadlines,
} from "./deadline.js";
export type { DeadlineStoreOptions, GuardedStateStore, StoreHealth } from "./deadline.js";
