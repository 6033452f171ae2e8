import type {
  JSONRPCMessage,
  MessageExtraInfo,
  Transport,
  TransportSendOptions,
} from "@modelcontextprotocol/server";

/**
 * Wraps a server transport and holds incoming messages until `start()`, so the proxy can read the
 * client's opening (`initialize`, or a 2026 request's envelope: its capabilities and name) before
 * it connects upstream with the same ones, and only then let the MCP server see the conversation
 * from its first message. `ended` resolves when the client side closes.
 */
export class HeldTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void;
  private readonly held: Array<[JSONRPCMessage, MessageExtraInfo | undefined]> = [];
  private released = false;
  private closed = false;
  private waiting: { resolve: (m: JSONRPCMessage) => void; reject: (e: Error) => void } | undefined;
  private endedResolve!: () => void;
  readonly ended = new Promise<void>((resolve) => {
    this.endedResolve = resolve;
  });

  constructor(private readonly inner: Transport) {
    inner.onmessage = (message, extra) => {
      if (this.released) this.onmessage?.(message, extra);
      else {
        this.held.push([message, extra]);
        this.waiting?.resolve(message);
        this.waiting = undefined;
      }
    };
    inner.onclose = () => {
      this.closed = true;
      this.endedResolve();
      this.waiting?.reject(new Error("the client closed the connection before initializing"));
      this.onclose?.();
    };
    inner.onerror = (error) => this.onerror?.(error);
  }

  get sessionId(): string | undefined {
    return this.inner.sessionId;
  }

  /** Starts the inner transport and resolves with the client's first message. */
  async first(): Promise<JSONRPCMessage> {
    const first = new Promise<JSONRPCMessage>((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
    await this.inner.start();
    if (this.held.length) return this.held[0][0];
    if (this.closed) throw new Error("the client closed the connection before initializing");
    return first;
  }

  /** Releases the held messages to whoever connected to this transport. */
  async start(): Promise<void> {
    this.released = true;
    for (const [message, extra] of this.held.splice(0)) this.onmessage?.(message, extra);
  }

  send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    return this.inner.send(message, options);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  setProtocolVersion(version: string): void {
    this.inner.setProtocolVersion?.(version);
  }
}
