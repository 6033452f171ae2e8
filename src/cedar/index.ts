/** `engine: { cedar }`: Cedar policies evaluated with the official `@cedar-policy/cedar-wasm`, combined with toolwarden's verdicts. */
export { cedarEngine, compileCedar, toCedar } from "./engine.js";
export type { CedarCheck, CedarSpec } from "./engine.js";
export { cedarSchema } from "./schema.js";
export type { RawCedar } from "./schema.js";
