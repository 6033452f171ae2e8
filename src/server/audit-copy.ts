import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { AuditSinkError } from "../audit/errors.js";
import type { SqliteSinkOptions } from "../audit/sqlite-sink.js";
import type { AuditEvent, AuditSink } from "../audit/types.js";
import type { CopyReply, CopyRequest } from "./audit-copy-worker.js";

/** How long appended records gather before they go to the thread in one message (and one transaction). */
const GATHER_MS = 50;
/** Records past which they go at once. */
const GATHER_MAX = 1000;

interface Waiting {
  resolve: (failed?: CopyReply["failed"]) => void;
  reject: (error: unknown) => void;
}

/**
 * The SQLite copy of the audit trail, written by a thread of its own: sealing each record again
 * for the copy's chain and inserting it into six indexes cost a decision through `serve` more than
 * everything else it does, on the one thread that answers requests. Records gather for up to
 * GATHER_MS and are written in one transaction; `append` resolves once its record is committed
 * (or rejects with the copy's error, and the fanout spools it). A thread that dies rejects what it
 * held and is started again by the next record.
 */
export class ThreadedSqliteCopy implements AuditSink {
  readonly kind = "sqlite";
  readonly #options: SqliteSinkOptions;
  readonly #script: { url: URL; execArgv: string[] };
  #worker: Worker | undefined;
  #started: Promise<Worker> | undefined;
  #next = 1;
  #gathered: Array<{ event: AuditEvent; resolve: () => void; reject: (error: unknown) => void }> = [];
  #timer: NodeJS.Timeout | undefined;
  readonly #waiting = new Map<number, Waiting>();
  #closed = false;

  private constructor(options: SqliteSinkOptions, script: { url: URL; execArgv: string[] }) {
    this.#options = options;
    this.#script = script;
  }

  /**
   * Opens the copy in its thread (the database and its schema); undefined when there is no thread
   * script to run (neither built nor its TypeScript source), and the caller writes in this thread.
   */
  static async open(options: SqliteSinkOptions): Promise<ThreadedSqliteCopy | undefined> {
    const script = workerScript();
    if (!script) return undefined;
    const copy = new ThreadedSqliteCopy(options, script);
    await copy.#start();
    return copy;
  }

  append(event: AuditEvent): Promise<void> {
    if (this.#closed) return Promise.reject(new AuditSinkError("audit sink is closed"));
    return new Promise((resolve, reject) => {
      const size = this.#gathered.push({ event, resolve, reject });
      if (size >= GATHER_MAX) this.#send();
      else if (size === 1) this.#timer = setTimeout(() => this.#send(), GATHER_MS);
    });
  }

  /** Resolves once every record appended so far is committed. */
  async flush(): Promise<void> {
    this.#send();
    await this.#request({ type: "flush" });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#send();
    try {
      if (this.#worker) await this.#request({ type: "close" });
    } finally {
      await this.#worker?.terminate();
      this.#worker = undefined;
    }
  }

  #send(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#gathered;
    if (!batch.length) return;
    this.#gathered = [];
    this.#request({ type: "append", events: batch.map((entry) => entry.event) }).then(
      (failed) => {
        batch.forEach((entry, i) => {
          const error = failed?.[i];
          if (error === undefined) entry.resolve();
          else entry.reject(new AuditSinkError(`cannot write audit records to sqlite: ${error}`));
        });
      },
      (error) => {
        for (const entry of batch) entry.reject(error);
      },
    );
  }

  /** Sends one request to the thread (starting it if need be) and waits for its answer. */
  async #request(request: CopyRequest extends infer R ? (R extends unknown ? Omit<R, "id"> : never) : never): Promise<CopyReply["failed"]> {
    const worker = await this.#start();
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      worker.postMessage({ ...request, id } as CopyRequest);
    });
  }

  #start(): Promise<Worker> {
    this.#started ??= new Promise<Worker>((resolve, reject) => {
      const worker = new Worker(this.#script.url, {
        workerData: this.#options,
        execArgv: this.#script.execArgv,
      });
      worker.unref();
      worker.on("message", (reply: CopyReply) => {
        if (reply.id === 0) {
          // Opened (or failed to open) the database.
          if (reply.error === undefined) {
            this.#worker = worker;
            resolve(worker);
          } else {
            reject(new AuditSinkError(`cannot open the SQLite audit copy: ${reply.error}`));
            void worker.terminate();
          }
          return;
        }
        const waiting = this.#waiting.get(reply.id);
        this.#waiting.delete(reply.id);
        if (reply.error === undefined) waiting?.resolve(reply.failed);
        else waiting?.reject(new AuditSinkError(`the SQLite audit copy failed: ${reply.error}`));
      });
      const gone = (error: Error) => {
        const failure = new AuditSinkError(`the SQLite audit copy thread stopped: ${error.message}`, {
          cause: error,
        });
        reject(failure);
        if (this.#worker === worker || this.#worker === undefined) {
          this.#worker = undefined;
          this.#started = undefined;
        }
        for (const waiting of this.#waiting.values()) waiting.reject(failure);
        this.#waiting.clear();
      };
      worker.on("error", gone);
      worker.on("exit", (code) => gone(new Error(`exited with code ${code}`)));
    });
    return this.#started;
  }
}

/** The built thread script, or its TypeScript source run through tsx (tests, `--import tsx`). */
function workerScript(): { url: URL; execArgv: string[] } | undefined {
  const built = new URL("./audit-copy-worker.js", import.meta.url);
  if (existsSync(fileURLToPath(built))) return { url: built, execArgv: [] };
  const source = new URL("./audit-copy-worker.ts", import.meta.url);
  if (existsSync(fileURLToPath(source))) return { url: source, execArgv: ["--import", "tsx"] };
  return undefined;
}
