export { ENUM_MAX, learnConstraint, RELATIVE_BASE, shapeRegex } from "./infer.js";
export type { LearnedConstraint } from "./infer.js";
export { addAuditRecords, addTrace, emptyObservations, isAuditLog, observedCalls } from "./observations.js";
export type { ObservedCall, ObservedInput, ObservedStep, Observations } from "./observations.js";
export { suggestPolicy } from "./suggest.js";
export type { ToolAnnotations } from "../adapters/mcp/risk.js";
export type { SuggestOptions, Suggestion } from "./suggest.js";
