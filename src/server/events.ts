import type { AuditEvent, AuditSink } from "../audit/types.js";
import { canonicalJson } from "../core/canonical.js";
import type { Approval } from "../stores/types.js";

/** What the live stream carries: audit events as they become durable, approval changes, policy swaps. */
export type ServerEvent =
  | { type: "audit"; event: AuditEvent }
  | { type: "approval"; approval: Approval }
  | { type: "policy"; action: string; from?: string; to?: string; errors?: string[] };

/**
 * Gets each event, and its server-sent-events frame: serialised once per event, however many
 * listeners ask for it.
 */
type Listener = (event: ServerEvent, frame: () => string) => void;

/** The SSE frame of an event: `event:` and one `data:` line (canonical JSON has no newline). */
export function sseFrame(event: ServerEvent): string {
  return `event: ${event.type}\ndata: ${canonicalJson(event)}\n\n`;
}

/** An in-process fan-out of server events to the SSE clients and waiting decide calls. */
export class EventBus {
  readonly #listeners = new Set<Listener>();
  /** Event stream clients dropped for falling behind. */
  dropped = 0;

  get size(): number {
    return this.#listeners.size;
  }

  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  emit(event: ServerEvent): void {
    let text: string | undefined;
    const frame = () => {
      text ??= sseFrame(event);
      return text;
    };
    for (const listener of this.#listeners) {
      try {
        listener(event, frame);
      } catch {
        // A broken listener (a closed stream) must not stop the others.
      }
    }
  }
}

/** Passes every audit event on to the bus once the inner sink has made it durable. */
export class TapAuditSink implements AuditSink {
  readonly kind: string;

  constructor(
    readonly inner: AuditSink,
    private readonly bus: EventBus,
  ) {
    this.kind = inner.kind;
  }

  async append(event: AuditEvent): Promise<void> {
    await this.inner.append(event);
    if (this.bus.size) this.bus.emit({ type: "audit", event });
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
