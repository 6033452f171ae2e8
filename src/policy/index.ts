export { compilePolicy } from "./compile.js";
export type {
  CompiledArgCheck,
  CompiledBudget,
  CompiledLimit,
  CompiledPolicy,
  CompiledRule,
  RuleSet,
  CompiledTool,
  DetectorUse,
  LimitScope,
} from "./compile.js";
export type { EvalContext, FlowHit } from "./context.js";
export { compileGlob, compileGlobs, globError } from "./glob.js";
export { loadPolicyFile, loadPolicyObject, loadPolicyText } from "./load.js";
export type { LoadedPolicy, Origin } from "./load.js";
export type { RawPolicy, RawTest } from "./schema.js";

import type { CompiledPolicy } from "./compile.js";
import { compilePolicy } from "./compile.js";
import { loadPolicyFile, loadPolicyObject, loadPolicyText } from "./load.js";

/** Loads and compiles a policy file (and its `extends`). Throws `PolicyLoadError`. */
export function compilePolicyFile(file: string): CompiledPolicy {
  return compilePolicy(loadPolicyFile(file));
}

/** Compiles policy text (YAML or JSON). Throws `PolicyLoadError`. */
export function compilePolicyText(text: string, file?: string): CompiledPolicy {
  return compilePolicy(loadPolicyText(text, file));
}

/** Compiles a policy object. Throws `PolicyLoadError`. */
export function compilePolicyObject(policy: unknown, file?: string): CompiledPolicy {
  return compilePolicy(loadPolicyObject(policy, file));
}
