import type { RequestOptions } from "@modelcontextprotocol/client";
import { notificationKey } from "./pump.js";
import type { NotificationPump } from "./pump.js";

/** What a request handler gets from the SDK (`ctx.mcpReq`) that relaying needs. */
export interface RelayContext {
  signal: AbortSignal;
  notify: (notification: never) => Promise<void>;
  /** A 2026-07-28 retry's answers to the server's input requests (the SDK lifts them out of params). */
  inputResponses?: Record<string, unknown>;
  /** A 2026-07-28 retry's echoed server state. */
  requestState?: () => unknown;
}

/** Methods whose 2026-07-28 result may be `input_required` (multi-round-trip). */
const MULTI_ROUND = new Set(["tools/call", "prompts/get", "resources/read"]);

/**
 * The params of a request to send on, plus what a 2026-07-28 retry carried (its input responses
 * and the server's state), so a multi-round-trip exchange passes through end to end.
 */
export function withRoundTrip(
  method: string,
  params: Record<string, unknown> | undefined,
  ctx: RelayContext,
): Record<string, unknown> | undefined {
  if (!MULTI_ROUND.has(method)) return params;
  const state = ctx.requestState?.();
  if (ctx.inputResponses === undefined && state === undefined) return params;
  return {
    ...params,
    ...(ctx.inputResponses !== undefined ? { inputResponses: ctx.inputResponses } : {}),
    ...(typeof state === "string" ? { requestState: state } : {}),
  };
}

/** Request options that hand a 2026-07-28 `input_required` result back (to pass it to the client) instead of failing. */
export function roundTripOptions(method: string): RequestOptions {
  return MULTI_ROUND.has(method) ? { allowInputRequired: true } : {};
}

/** `_meta` keys the v2 SDK owns (the per-request envelope): each side's SDK sets its own. */
const ENVELOPE_PREFIX = "io.modelcontextprotocol/";

/**
 * The params to send on: without the caller's progress token (the SDK gives the relayed request a
 * fresh one) and without the caller's protocol envelope (the other side gets ours).
 */
export function relayedParams(params: unknown): Record<string, unknown> | undefined {
  if (!params || typeof params !== "object") return undefined;
  const { _meta, ...rest } = params as { _meta?: Record<string, unknown> };
  if (!_meta) return rest;
  const meta: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(_meta))
    if (key !== "progressToken" && !key.startsWith(ENVELOPE_PREFIX)) meta[key] = value;
  return Object.keys(meta).length ? { ...rest, _meta: meta } : rest;
}

/**
 * Relays one request to the other side: the caller's cancellation goes along (the SDK sends
 * `notifications/cancelled`), the timeout is reset by progress, and progress comes back under the
 * caller's own token through the pump (bounded; a newer progress replaces a queued older one).
 * Progress still queued when the answer is ready is dropped, so none arrives after its request.
 */
export async function relay<T>(
  params: unknown,
  ctx: RelayContext,
  timeout: number,
  pump: NotificationPump,
  send: (options: RequestOptions) => Promise<T>,
): Promise<T> {
  const token = (params as { _meta?: { progressToken?: string | number } } | undefined)?._meta?.progressToken;
  const options: RequestOptions = { signal: ctx.signal, timeout, resetTimeoutOnProgress: true };
  const key =
    token === undefined
      ? undefined
      : notificationKey({ method: "notifications/progress", params: { progressToken: token } });
  if (token !== undefined) {
    options.onprogress = (progress) => {
      const notification = {
        method: "notifications/progress",
        params: { ...progress, progressToken: token },
      };
      pump.push(() => ctx.notify(notification as never), key);
    };
  }
  try {
    return await send(options);
  } finally {
    if (key) pump.discard(key);
  }
}
