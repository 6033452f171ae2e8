export { FlowIndex, OVERFLOW_SOURCE } from "./flow-index.js";
export type { FlowHit, FlowIndexOptions } from "./flow-index.js";
export { normalizeFlowText } from "./normalize.js";
export { addValue, contentParts, MAX_WALK_DEPTH, MAX_WALK_NODES, scanValue } from "./walk.js";
export { parseRendering, splitOutput } from "./fields.js";
export type { FieldLabels, OutputPart, SplitForm, SplitOutput } from "./fields.js";
