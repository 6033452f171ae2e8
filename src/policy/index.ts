export { compilePolicy } from "./compile.js";
export type { CompiledArgCheck, CompiledBudget, CompiledLimit, CompiledPolicy } from "./compiled.js";
export type {
  CompiledRule,
  CompiledTool,
  DetectorUse,
  LimitScope,
  OutputAction,
  RuleSet,
} from "./compiled.js";
export type { CompileStage } from "./compile.js";
export { COMPILE_STAGES } from "./compile.js";
export type { EvalContext, FlowHit } from "./context.js";
export { POLICY_ENGINES, registerEngine } from "./engines.js";
export { explainPolicy } from "./explain.js";
export type { EngineCheck, PolicyEngine } from "./engines.js";
export { compileGlob, compileGlobs, globError } from "./glob.js";
export { loadPolicyFile, loadPolicyObject, loadPolicyText } from "./load.js";
export type { LoadedPolicy, Origin } from "./load.js";
export type { RawPolicy, RawTest } from "./schema.js";

import type { CompiledPolicy } from "./compiled.js";
import { compilePolicy } from "./compile.js";
import { loadPolicyFile, loadPolicyObject, loadPolicyText } from "./load.js";

/** Loads and compiles a policy file (and its `extends`). Throws `PolicyLoadError`. */
export function compilePolicyFile(file: string): CompiledPolicy {
  return compilePolicy(loadPolicyFile(file, { collect: true }));
}

/** Compiles policy text (YAML or JSON). Throws `PolicyLoadError`. */
export function compilePolicyText(text: string, file?: string): CompiledPolicy {
  return compilePolicy(loadPolicyText(text, file, { collect: true }));
}

/** Compiles a policy object. Throws `PolicyLoadError`. */
export function compilePolicyObject(policy: unknown, file?: string): CompiledPolicy {
  return compilePolicy(loadPolicyObject(policy, file, { collect: true }));
}

/**
 * Compiles a policy file and waits until every analyzer it uses is loaded (the PostgreSQL
 * parser is WASM and loads asynchronously), so the first call is decided like every later one.
 */
export async function compilePolicyFileAsync(file: string): Promise<CompiledPolicy> {
  return ready(compilePolicyFile(file));
}

/** `compilePolicyText`, waiting for the analyzers to load. */
export async function compilePolicyTextAsync(text: string, file?: string): Promise<CompiledPolicy> {
  return ready(compilePolicyText(text, file));
}

/** `compilePolicyObject`, waiting for the analyzers to load. */
export async function compilePolicyObjectAsync(policy: unknown, file?: string): Promise<CompiledPolicy> {
  return ready(compilePolicyObject(policy, file));
}

async function ready(policy: CompiledPolicy): Promise<CompiledPolicy> {
  await policy.ready?.();
  return policy;
}
