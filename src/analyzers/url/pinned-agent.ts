import dns from "node:dns";
import http from "node:http";
import https from "node:https";
import net, { type LookupFunction } from "node:net";
import type { Duplex } from "node:stream";
import { ToolwardenError } from "../../core/index.js";
import { classifyAddress, parseAddress } from "./address.js";

/** Options of the DNS-pinned agents and lookup. */
export interface PinnedOptions {
  /** `block` (default) refuses non-public answers; metadata addresses are refused either way. */
  private?: "block" | "allow";
}

/**
 * A `lookup` for `net.connect` / `http.request` that resolves every answer and refuses the
 * connection (error code `url.private` or `url.metadata`) if ANY answer is non-public. The
 * socket then connects to an address that was checked, so a rebinding DNS answer cannot slip
 * in between a policy check and the connection.
 */
export function createPinnedLookup(options: PinnedOptions = {}): LookupFunction {
  const blockPrivate = options.private !== "allow";
  return (hostname, lookupOptions, callback) => {
    dns.lookup(hostname, { ...lookupOptions, all: true }, (error, answers) => {
      if (error) return callback(error, "", 0);
      for (const answer of answers) {
        const refusal = refuse(answer.address, blockPrivate, hostname);
        if (refusal) return callback(refusal, "", 0);
      }
      if (answers.length === 0) {
        return callback(Object.assign(new Error(`no address for ${hostname}`), { code: "ENOTFOUND" }), "", 0);
      }
      if (lookupOptions.all) return callback(null, answers);
      callback(null, answers[0].address, answers[0].family);
    });
  };
}

/**
 * An `http.Agent` for the tool's own requests that refuses private (and always metadata)
 * destinations at connect time: names through {@link createPinnedLookup}, IP literals (which
 * Node connects to without a lookup) and Unix sockets before connecting. Redirects go through
 * the same agent, so they are checked too.
 */
export function createPinnedAgent(options: PinnedOptions & http.AgentOptions = {}): http.Agent {
  const { private: privateMode, ...agentOptions } = options;
  return new (guarded(http.Agent, connectionGuard({ private: privateMode })))(agentOptions);
}

/** The HTTPS counterpart of {@link createPinnedAgent}. */
export function createPinnedHttpsAgent(options: PinnedOptions & https.AgentOptions = {}): https.Agent {
  const { private: privateMode, ...agentOptions } = options;
  return new (guarded(https.Agent, connectionGuard({ private: privateMode })))(agentOptions);
}

/** `Base` (the HTTP or the HTTPS agent) with every connection passed through `guard` first. */
function guarded<Base extends new (...args: any[]) => http.Agent>(
  Base: Base,
  guard: ReturnType<typeof connectionGuard>,
) {
  return class PinnedAgent extends Base {
    override createConnection(
      request: http.ClientRequestArgs,
      callback?: (error: Error | null, stream: Duplex) => void,
    ): Duplex | null | undefined {
      return guard(request, callback, (pinned, cb) => super.createConnection(pinned, cb));
    }
  };
}

type Connect = (
  request: http.ClientRequestArgs,
  callback?: (error: Error | null, stream: Duplex) => void,
) => Duplex | null | undefined;

function connectionGuard(options: PinnedOptions) {
  const blockPrivate = options.private !== "allow";
  const lookup = createPinnedLookup(options);
  return (
    request: http.ClientRequestArgs,
    callback: ((error: Error | null, stream: Duplex) => void) | undefined,
    connect: Connect,
  ): Duplex | null | undefined => {
    let refusal: ToolwardenError | null = null;
    if (request.socketPath !== undefined && blockPrivate) {
      refusal = new ToolwardenError("url.private", `refused to connect to unix socket ${request.socketPath}`);
    } else {
      const host = (request.host ?? request.hostname ?? "localhost").replace(/^\[(.*)\]$/, "$1");
      if (net.isIP(host) !== 0) refusal = refuse(host, blockPrivate, host);
    }
    if (refusal) {
      const error = refusal;
      process.nextTick(() => callback?.(error, undefined as unknown as Duplex));
      return undefined;
    }
    return connect({ ...request, lookup }, callback);
  };
}

function refuse(address: string, blockPrivate: boolean, name: string): ToolwardenError | null {
  const parsed = parseAddress(address);
  const risk = parsed
    ? classifyAddress(parsed)
    : { kind: "private" as const, reason: "unrecognised address" };
  if (risk === null || (risk.kind === "private" && !blockPrivate)) return null;
  const shown = name === address ? address : `${name} (${address})`;
  return new ToolwardenError(`url.${risk.kind}`, `refused to connect to ${shown}: ${risk.reason}`);
}
