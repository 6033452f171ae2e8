/** Plans with signed, single-use authority tokens, and scopes that narrow a policy for a block of work. */
export { Authority, withAuthorityFinding } from "./authority.js";
export type { AuthorityCheck } from "./authority.js";
export { PlanRegistry } from "./plan.js";
export type { Plan, PlanFindingCode, PlannedCall, PlanOptions, PlanStep, PlanUse } from "./plan.js";
export { checkScope, compileScope } from "./scope.js";
export type { CompiledScope, ScopeSpec } from "./scope.js";
