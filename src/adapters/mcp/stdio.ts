import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { PassThrough } from "node:stream";
import type { Readable, Writable } from "node:stream";
import type { JSONRPCMessage, Transport } from "@modelcontextprotocol/server";

/** The longest JSON-RPC line either side may send, unless told otherwise: 10 MiB, as the SDKs. */
export const DEFAULT_MAX_LINE = 10 * 1024 * 1024;

/** Why a stdio connection ended, in words for a log line or an error a client reads. */
export class ConnectionEnded extends Error {
  readonly code = "mcp.connection_ended";
}

export interface LineTransportOptions {
  /** Longest line accepted (bytes, without the newline). Longer: the connection ends with `overLimit`. */
  maxLine?: number;
  /** What to say when a line is over the limit (given the limit). */
  overLimit?: (limit: number) => string;
}

/**
 * MCP over newline-delimited JSON on a pair of streams (the stdio binding). Lines split at `\n`
 * only (JSON may hold U+2028); a line over the limit ends the connection with a clear reason
 * rather than buffering without bound; `send` resolves once the stream has taken the line and
 * its buffer is below the high-water mark, so callers that wait on it get backpressure, and
 * `backlog` says how much is still unwritten.
 */
export class LineTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  /** Why the connection ended; undefined while it is open or when it was closed on purpose. */
  reason: string | undefined;
  private chunks: Buffer[] = [];
  private pending = 0;
  private closed = false;
  private drainWaiters: Array<() => void> = [];
  private readonly maxLine: number;

  constructor(
    protected input: Readable,
    protected output: Writable,
    private readonly options: LineTransportOptions = {},
  ) {
    this.maxLine = options.maxLine ?? DEFAULT_MAX_LINE;
  }

  async start(): Promise<void> {
    this.input.on("data", this.onData);
    this.input.on("end", this.onEnd);
    this.input.on("error", this.onStreamError);
    this.output.on("error", this.onStreamError);
    this.output.on("drain", this.onDrain);
  }

  /** Bytes written but not yet taken by the reader. */
  get backlog(): number {
    return this.output.writableLength;
  }

  private readonly onData = (chunk: Buffer) => {
    let start = 0;
    let cut = chunk.indexOf(10);
    while (cut >= 0) {
      const piece = chunk.subarray(start, cut);
      if (this.pending + piece.length > this.maxLine) return this.overLimit();
      const line = this.chunks.length ? Buffer.concat([...this.chunks, piece]) : piece;
      this.chunks = [];
      this.pending = 0;
      this.deliver(line);
      if (this.closed) return;
      start = cut + 1;
      cut = chunk.indexOf(10, start);
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      if (this.pending + rest.length > this.maxLine) return this.overLimit();
      this.chunks.push(rest);
      this.pending += rest.length;
    }
  };

  private deliver(line: Buffer): void {
    const text = line.toString("utf8").trim();
    if (!text) return;
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch (error) {
      this.onerror?.(new Error(`not a JSON-RPC message (${(error as Error).message})`));
      return;
    }
    if (!message || typeof message !== "object" || (message as { jsonrpc?: unknown }).jsonrpc !== "2.0") {
      this.onerror?.(new Error("not a JSON-RPC 2.0 message"));
      return;
    }
    this.onmessage?.(message as JSONRPCMessage);
  }

  private overLimit(): void {
    this.chunks = [];
    this.pending = 0;
    this.end(this.options.overLimit?.(this.maxLine) ?? `received a line of more than ${this.maxLine} bytes`);
  }

  private readonly onEnd = () => this.inputEnded();
  /** The reader reached the end of input. */
  protected inputEnded(): void {
    this.end("closed its output");
  }
  private readonly onStreamError = (error: Error) => this.end(`stream error: ${error.message}`);
  private readonly onDrain = () => {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const resolve of waiters) resolve();
  };

  /** Ends the connection for `reason` (first reason wins); fires `onclose` once. */
  protected end(reason: string | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.reason ??= reason;
    this.input.off("data", this.onData);
    this.input.off("end", this.onEnd);
    this.onDrain();
    this.input.pause();
    this.onclose?.();
  }

  send(message: JSONRPCMessage): Promise<void> {
    if (this.closed) return Promise.reject(new ConnectionEnded(this.reason ?? "the connection is closed"));
    if (this.output.write(`${JSON.stringify(message)}\n`)) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  async close(): Promise<void> {
    this.end(undefined);
  }
}

export interface ChildOptions extends LineTransportOptions {
  command: string;
  args?: string[];
  env?: Record<string, string>;
  cwd?: string;
  stderr?: "inherit" | "pipe" | "ignore";
  /** Names the server in reasons: "server `github`". */
  name?: string;
}

/**
 * Starts an MCP server as a child process and speaks to it over its stdio. When the child exits or
 * misbehaves, `reason` says so ("server `x` exited with code 3", "... sent a line of more than N
 * bytes"); closing stops the child (end of input, then SIGTERM, then SIGKILL). Has `pid` and
 * `stderr` like the SDK's stdio transport, so the v2 client probes it as stdio (in place).
 */
export class ChildProcessTransport extends LineTransport {
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  private stopping = false;
  private readonly stderrPipe: PassThrough | undefined;

  constructor(private readonly spec: ChildOptions) {
    const name = serverLabel(spec.name);
    super(undefined as never, undefined as never, {
      ...spec,
      overLimit: spec.overLimit ?? ((limit) => `${name} sent a line of more than ${limit} bytes`),
    });
    if (spec.stderr === "pipe") this.stderrPipe = new PassThrough();
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  /** The child's stderr when it is piped (available before `start`, so nothing early is missed). */
  get stderr(): Readable | null {
    return this.stderrPipe ?? null;
  }

  override async start(): Promise<void> {
    const name = this.label;
    const child = spawn(this.spec.command, this.spec.args ?? [], {
      env: this.spec.env,
      cwd: this.spec.cwd,
      stdio: ["pipe", "pipe", this.spec.stderr ?? "inherit"],
      windowsHide: true,
    });
    this.child = child;
    if (this.stderrPipe) child.stderr?.pipe(this.stderrPipe);
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", reject);
    });
    child.on("error", (error) => this.end(`${name}: ${error.message}`));
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        if (!this.stopping)
          this.end(
            code !== null
              ? `${name} exited with code ${code}`
              : `${name} was killed by ${signal ?? "a signal"}`,
          );
        resolve();
      });
    });
    child.stdin?.on("error", () => {});
    this.input = child.stdout as Readable;
    this.output = child.stdin as Writable;
    await super.start();
  }

  /** The child closed its stdout: wait for its exit status (briefly) so the reason names it. */
  protected override inputEnded(): void {
    const exited = this.exited ?? Promise.resolve();
    const timer = setTimeout(() => this.end(`${this.label} closed its output`), 1000);
    void exited.then(() => clearTimeout(timer));
  }

  private get label(): string {
    return serverLabel(this.spec.name);
  }

  protected override end(reason: string | undefined): void {
    super.end(reason);
    if (reason !== undefined && this.child && this.child.exitCode === null) this.child.kill("SIGTERM");
  }

  override async close(): Promise<void> {
    this.stopping = this.reason === undefined;
    this.end(undefined);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.stdin?.end();
    const exited = this.exited ?? Promise.resolve();
    const wait = (ms: number) =>
      Promise.race([
        exited.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref()),
      ]);
    if (await wait(2000)) return;
    child.kill("SIGTERM");
    if (await wait(2000)) return;
    child.kill("SIGKILL");
    await exited;
  }
}

/** Parses a size for `--max-line`: bytes, or with a KiB/MiB/GiB (or K/M/G, KB/MB/GB) suffix. */
export function parseByteSize(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(k|ki|kib|kb|m|mi|mib|mb|g|gi|gib|gb|b)?\s*$/i.exec(text);
  if (!match) return undefined;
  const unit = (match[2] ?? "b").toLowerCase()[0];
  const factor = unit === "k" ? 1024 : unit === "m" ? 1024 ** 2 : unit === "g" ? 1024 ** 3 : 1;
  const bytes = Math.floor(Number(match[1]) * factor);
  return bytes > 0 ? bytes : undefined;
}

function serverLabel(name: string | undefined): string {
  return name ? `server \`${name}\`` : "the server";
}
