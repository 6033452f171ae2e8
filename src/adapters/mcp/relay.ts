import type { RequestOptions } from "@modelcontextprotocol/sdk/shared/protocol.js";

/** What a request handler gets from the SDK that relaying needs. */
export interface RelayExtra {
  signal: AbortSignal;
  sendNotification: (notification: never) => Promise<void>;
}

/**
 * Relays one request to the other side: the caller's cancellation goes along (the SDK sends
 * `notifications/cancelled`), the timeout is reset by progress, and progress comes back under the
 * caller's own token (the SDK gives the relayed request a fresh one). The answer is returned only
 * after every progress notification has been sent, so none arrives after its request is done.
 */
export async function relay<T>(
  params: unknown,
  extra: RelayExtra,
  timeout: number,
  send: (options: RequestOptions) => Promise<T>,
): Promise<T> {
  const token = (params as { _meta?: { progressToken?: string | number } } | undefined)?._meta?.progressToken;
  const options: RequestOptions = { signal: extra.signal, timeout, resetTimeoutOnProgress: true };
  let sent: Promise<unknown> = Promise.resolve();
  if (token !== undefined) {
    options.onprogress = (progress) => {
      sent = sent
        .then(() =>
          extra.sendNotification({
            method: "notifications/progress",
            params: { ...progress, progressToken: token },
          } as never),
        )
        .catch(() => {});
    };
  }
  const result = await send(options);
  await sent;
  return result;
}
