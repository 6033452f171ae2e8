import type { Agent, Call } from "../core/index.js";
import type { EvalContext } from "../policy/context.js";

const NO_AGENT: Agent = Object.freeze({});
const NO_LABELS: ReadonlySet<string> = new Set();

/**
 * The context value tests read when a plan step constrains arguments: the call's own arguments
 * and agent. Plans constrain values, not flows, so session state is empty here.
 */
export function argsContext(call: Call): EvalContext {
  return {
    call,
    tool: call.tool,
    args: call.args ?? {},
    agent: call.agent ?? NO_AGENT,
    server: call.server,
    decl: undefined,
    findings: [],
    seen: NO_LABELS,
    flows: () => [],
    endorsed: () => false,
    fromValues: () => false,
    sessionView: () => ({ id: call.session ?? "" }),
    userInputs: () => [],
  };
}
