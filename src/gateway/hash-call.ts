import { canonicalJson, sha256Hex } from "../core/canonical.js";
import type { Call } from "../core/index.js";

/** Binds an approval to one exact call: tool, arguments, server, agent and session. */
export function hashCall(call: Call): string {
  return sha256Hex(
    canonicalJson({
      tool: call.tool,
      args: call.args ?? {},
      server: call.server ?? null,
      agent: call.agent?.id ?? null,
      session: call.session ?? null,
    }),
  );
}
