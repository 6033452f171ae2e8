import { parentPort, workerData } from "node:worker_threads";
import { SqliteAuditSink, type SqliteSinkOptions } from "../audit/sqlite-sink.js";
import type { AuditEvent } from "../audit/types.js";

/** A request to the copy thread; answered with a `CopyReply` of the same id. */
export type CopyRequest =
  | { id: number; type: "append"; events: AuditEvent[] }
  | { id: number; type: "flush" }
  | { id: number; type: "close" };

/**
 * `id` 0 answers the opening of the database; `error` is set when the request failed; for an
 * append, `failed` holds the error of each record that was not committed (by index), if any.
 */
export interface CopyReply {
  id: number;
  error?: string;
  failed?: Record<number, string>;
}

/**
 * The SQLite audit copy's thread (see `ThreadedSqliteCopy`): one sink, requests answered in the
 * order they complete. Appends of one message are one group commit.
 */
if (parentPort) {
  const port = parentPort;
  let sink: SqliteAuditSink | undefined;
  try {
    const options = workerData as SqliteSinkOptions;
    // A Buffer crosses threads as a plain Uint8Array.
    const key = options.key instanceof Uint8Array ? Buffer.from(options.key) : options.key;
    sink = new SqliteAuditSink({ ...options, key });
    port.postMessage({ id: 0 } satisfies CopyReply);
  } catch (error) {
    port.postMessage({ id: 0, error: (error as Error)?.message ?? String(error) } satisfies CopyReply);
  }
  const opened = sink;
  port.on("message", (request: CopyRequest) => {
    if (!opened) return;
    if (request.type === "append") {
      // One message may span two group commits: each record is answered for.
      void Promise.allSettled(request.events.map((event) => opened.append(event))).then((results) => {
        const failed: Record<number, string> = {};
        let any = false;
        results.forEach((result, i) => {
          if (result.status === "fulfilled") return;
          failed[i] = (result.reason as Error)?.message ?? String(result.reason);
          any = true;
        });
        port.postMessage({ id: request.id, ...(any ? { failed } : {}) } satisfies CopyReply);
      });
      return;
    }
    const done = request.type === "flush" ? opened.flush() : opened.close();
    done.then(
      () => port.postMessage({ id: request.id } satisfies CopyReply),
      (error: unknown) =>
        port.postMessage({ id: request.id, error: (error as Error)?.message ?? String(error) } satisfies CopyReply),
    );
  });
}
