/** What a pump did with the notifications it was given. */
export interface PumpStats {
  forwarded: number;
  /** Replaced by a newer notification with the same key before they were sent (progress, list_changed). */
  coalesced: number;
  /** Not delivered: the queue was full, or their request had finished. */
  dropped: number;
}

export interface PumpOptions {
  /** Sends not yet finished (the transport's buffer is full) before new ones queue. Default 32. */
  maxInFlight?: number;
  /** Queued notifications without a key; past this the oldest is dropped. Default 1000. */
  maxQueued?: number;
}

/**
 * Forwards notifications to a side that may not keep up, with bounded memory: at most
 * `maxInFlight` sends are waiting on the transport (whose `send` resolves once its buffer has room)
 * and at most `maxQueued` more are queued; a notification with a key (a progress token, a
 * list_changed method, a resource URI) replaces the queued one with the same key, and past the
 * bound the oldest queued one is dropped. Responses never wait behind more than the bound, and
 * nothing is buffered without limit however fast the other side floods.
 */
export class NotificationPump {
  private readonly queue = new Map<string, () => Promise<void>>();
  private unkeyed = 0;
  private seq = 0;
  private inFlight = 0;
  private readonly maxInFlight: number;
  private readonly maxQueued: number;
  readonly stats: PumpStats = { forwarded: 0, coalesced: 0, dropped: 0 };

  constructor(options: PumpOptions = {}) {
    this.maxInFlight = options.maxInFlight ?? 32;
    this.maxQueued = options.maxQueued ?? 1000;
  }

  /** Sends now if the transport has room, else queues (coalescing by `key`, dropping past the bound). */
  push(send: () => Promise<void>, key?: string): void {
    if (this.inFlight < this.maxInFlight && this.queue.size === 0) {
      this.start(send);
      return;
    }
    if (key !== undefined) {
      const slot = `k:${key}`;
      if (this.queue.has(slot)) {
        this.stats.coalesced++;
        this.queue.delete(slot);
      }
      this.queue.set(slot, send);
      return;
    }
    if (this.unkeyed >= this.maxQueued) {
      for (const slot of this.queue.keys()) {
        if (slot.startsWith("u:")) {
          this.queue.delete(slot);
          this.unkeyed--;
          this.stats.dropped++;
          break;
        }
      }
    }
    this.queue.set(`u:${this.seq++}`, send);
    this.unkeyed++;
  }

  /** Drops a queued notification (e.g. the progress of a request that has been answered). */
  discard(key: string): void {
    if (this.queue.delete(`k:${key}`)) this.stats.dropped++;
  }

  /** Notifications waiting (queued, not in flight). */
  get queued(): number {
    return this.queue.size;
  }

  private start(send: () => Promise<void>): void {
    this.inFlight++;
    this.stats.forwarded++;
    send()
      .catch(() => {})
      .finally(() => {
        this.inFlight--;
        this.flush();
      });
  }

  private flush(): void {
    while (this.inFlight < this.maxInFlight && this.queue.size > 0) {
      const [slot, send] = this.queue.entries().next().value as [string, () => Promise<void>];
      this.queue.delete(slot);
      if (slot.startsWith("u:")) this.unkeyed--;
      this.start(send);
    }
  }
}

/** The coalescing key of a notification: one slot per progress token, list, or resource. */
export function notificationKey(notification: {
  method: string;
  params?: Record<string, unknown>;
}): string | undefined {
  const { method, params } = notification;
  if (method === "notifications/progress") return `progress:${String(params?.progressToken)}`;
  if (method.endsWith("/list_changed")) return method;
  if (method === "notifications/resources/updated") return `updated:${String(params?.uri)}`;
  return undefined;
}
