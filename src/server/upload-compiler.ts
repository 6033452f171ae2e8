import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { PolicyIssue } from "../core/index.js";
import type { LoadedTransfer } from "../policy/transfer.js";
import type { CompileRequest } from "./compile-worker.js";

export type CompileAnswer =
  | { ok: true; transfer: LoadedTransfer; hash: string; name: string }
  | { ok: false; issues?: PolicyIssue[]; error?: string };

/** One worker thread that loads uploaded policies, one request at a time; started on first use. */
export class UploadCompiler {
  #worker: Worker | undefined;
  #next = 1;
  #queue: Promise<unknown> = Promise.resolve();
  readonly #script = new URL("./compile-worker.js", import.meta.url);

  /** The worker's answer, or undefined when there is no built worker (running from source). */
  compile(request: Omit<CompileRequest, "id">): Promise<CompileAnswer | undefined> {
    const run = this.#queue.then(() => this.#send(request));
    this.#queue = run.catch(() => {});
    return run;
  }

  #send(request: Omit<CompileRequest, "id">): Promise<CompileAnswer | undefined> {
    if (!existsSync(fileURLToPath(this.#script))) return Promise.resolve(undefined);
    const worker = this.#start();
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        worker.off("message", onMessage);
        worker.off("error", onError);
        worker.off("exit", onExit);
      };
      const onMessage = (answer: CompileAnswer & { id: number }) => {
        if (answer.id !== id) return;
        cleanup();
        resolve(answer);
      };
      const onError = (error: Error) => {
        cleanup();
        this.#worker = undefined;
        reject(new Error(`the policy compiler thread failed: ${error.message}`));
      };
      const onExit = (code: number) => onError(new Error(`exited with code ${code}`));
      worker.on("message", onMessage);
      worker.on("error", onError);
      worker.on("exit", onExit);
      worker.postMessage({ ...request, id });
    });
  }

  #start(): Worker {
    if (!this.#worker) {
      // A stack large enough for the parser on policies within the nesting bound.
      this.#worker = new Worker(this.#script, { resourceLimits: { stackSizeMb: 8 } });
      this.#worker.unref();
    }
    return this.#worker;
  }
}
