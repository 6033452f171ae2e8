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
