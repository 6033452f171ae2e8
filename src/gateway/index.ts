export { evaluateCall, internalError } from "./evaluate.js";
export type { SessionState } from "./evaluate.js";
export { ARG_LIMITS } from "./inspect.js";
export { Session } from "./session.js";
export type { SessionOptions, SessionReport } from "./session.js";
export { hashCall, Warden } from "./warden.js";
export type { GuardedOutput, WardenOptions, WrapOptions } from "./warden.js";
