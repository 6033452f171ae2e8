import { cedarEngine } from "../cedar/engine.js";
import { judgeEngine } from "../judge/schema.js";
import { registerEngine } from "../policy/engines.js";

/*
 * The engines toolwarden ships, registered with the policy compiler (`policy/` imports none of
 * them). The Warden imports this module, so every entry that can compile a policy has them (a
 * test walks each package entry). Cedar's WebAssembly still loads only for a Cedar policy.
 */
registerEngine(judgeEngine);
registerEngine(cedarEngine);
