import type { Approval, StateStore } from "../stores/types.js";
import type { EventBus } from "./events.js";

/**
 * Waits until approval `id` is decided (approved, denied or expired), for at most `ms`. Decisions
 * made on this server arrive through the bus at once; the store is polled too, for decisions made
 * by another replica or the CLI. Resolves undefined on timeout or when `signal` aborts.
 */
export function waitForApproval(
  store: StateStore,
  bus: EventBus,
  id: string,
  ms: number,
  signal?: AbortSignal,
  pollMs = 1000,
): Promise<Approval | undefined> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (approval: Approval | undefined) => {
      if (done) return;
      done = true;
      unsubscribe();
      clearTimeout(deadline);
      clearInterval(poller);
      signal?.removeEventListener("abort", onAbort);
      resolve(approval);
    };
    const decided = (approval: Approval | undefined) =>
      approval && approval.id === id && approval.status !== "pending" ? approval : undefined;
    const unsubscribe = bus.subscribe((event) => {
      if (event.type === "approval") {
        const approval = decided(event.approval);
        if (approval) finish(approval);
      }
    });
    const poll = () =>
      store.getApproval(id).then(
        (approval) => {
          const found = decided(approval);
          if (found) finish(found);
        },
        () => {},
      );
    const poller = setInterval(poll, pollMs);
    const deadline = setTimeout(() => finish(undefined), ms);
    const onAbort = () => finish(undefined);
    signal?.addEventListener("abort", onAbort);
    if (signal?.aborted) finish(undefined);
    else void poll();
  });
}
