import type { AuditEvent, AuditSink } from "../audit/types.js";
import { canonicalJson } from "../core/canonical.js";
import type { Approval } from "../stores/types.js";

/** What the live stream carries: audit events as they become durable, approval changes, policy swaps. */
export type ServerEvent =
  | { type: "audit"; event: AuditEvent }
  | { type: "approval"; approval: Approval }
  | { type: "policy"; action: string; from?: string; to?: string; errors?: string[] };

/** Gets each event as it happens (a decide call waiting for its approval). */
type Listener = (event: ServerEvent) => void;

/** An event stream client: takes a chunk of frames and says how many bytes it has not taken yet. */
export interface StreamClient {
  write(chunk: Uint8Array): number;
  /** Ends the client's connection: it fell too far behind (it reconnects). */
  drop(): void;
}

/** How long frames gather before one write to every stream client (a dashboard does not notice). */
const COALESCE_MS = 25;
/** Bytes a stream client may hold unsent past which it is dropped. */
const MAX_UNSENT_BYTES = 1 << 20;
/** A comment line to each stream client this often, so proxies keep an idle stream open. */
const KEEP_ALIVE_MS = 15_000;

const ENCODER = new TextEncoder();
const KEEP_ALIVE = ENCODER.encode(": keep-alive\n\n");

/** The SSE frame of an event: `event:` and one `data:` line (canonical JSON has no newline). */
export function sseFrame(event: ServerEvent): string {
  return `event: ${event.type}\ndata: ${canonicalJson(event)}\n\n`;
}

/**
 * An in-process fan-out of server events to the waiting decide calls (at once) and the event
 * stream clients (batched): each event is serialised once, the frames of COALESCE_MS are joined
 * and encoded once, and every client is handed those same bytes, so 200 clients cost 200 writes
 * every COALESCE_MS, not 200 per event. A client that holds more than MAX_UNSENT_BYTES unsent (it
 * does not read) is dropped, so it never holds up the decisions that produce the events.
 */
export class EventBus {
  readonly #listeners = new Set<Listener>();
  readonly #clients = new Set<StreamClient>();
  #frames: string[] = [];
  #timer: NodeJS.Timeout | undefined;
  #keepAlive: NodeJS.Timeout | undefined;
  /** Event stream clients dropped for falling behind. */
  dropped = 0;

  /** Listeners and stream clients. */
  get size(): number {
    return this.#listeners.size + this.#clients.size;
  }

  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Adds an event stream client; returns its removal. */
  stream(client: StreamClient): () => void {
    this.#clients.add(client);
    this.#keepAlive ??= setInterval(() => this.#send(KEEP_ALIVE), KEEP_ALIVE_MS).unref();
    return () => {
      this.#clients.delete(client);
      if (this.#clients.size === 0) {
        clearInterval(this.#keepAlive);
        this.#keepAlive = undefined;
      }
    };
  }

  emit(event: ServerEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // A broken listener must not stop the others.
      }
    }
    if (this.#clients.size === 0) return;
    this.#frames.push(sseFrame(event));
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      // Encoded once for every client (a client never changes what it is given).
      const chunk = ENCODER.encode(this.#frames.join(""));
      this.#frames = [];
      this.#send(chunk);
    }, COALESCE_MS);
  }

  #send(chunk: Uint8Array): void {
    for (const client of this.#clients) {
      let unsent: number;
      try {
        unsent = client.write(chunk);
      } catch {
        unsent = Number.POSITIVE_INFINITY;
      }
      if (unsent > MAX_UNSENT_BYTES) {
        this.#clients.delete(client);
        this.dropped++;
        client.drop();
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
