/** `engine: { cedar }`: Cedar policies evaluated with the official `@cedar-policy/cedar-wasm`, combined with toolwarden's verdicts. */
export { compileCedar, toCedar } from "./engine.js";
export type { CedarCheck, CedarSpec, Contribute } from "./engine.js";
export { engineSchema } from "./schema.js";
export type { RawEngine } from "./schema.js";
