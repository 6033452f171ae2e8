import { parentPort } from "node:worker_threads";
import { PolicyLoadError } from "../core/index.js";
import { compilePolicy, loadPolicyText } from "../policy/index.js";
import { toTransfer } from "../policy/transfer.js";
import { type StoredVersionRef, uploadExtends } from "./upload-extends.js";

/** A request to the upload compiler thread. */
export interface CompileRequest {
  id: number;
  source: string;
  upload: string;
  file: string;
  dir: string;
  versions: StoredVersionRef[];
}

/**
 * The upload compiler thread: loads (parses with positions, validates) and compiles an uploaded
 * policy off the server's event loop, and answers with the loaded policy as plain data, or the
 * policy's issues. The main thread compiles the answer again without parsing (a tenth of the work).
 */
parentPort?.on("message", (request: CompileRequest) => {
  try {
    const loaded = loadPolicyText(request.source, request.upload, {
      collect: true,
      resolveExtends: uploadExtends(request),
    });
    const policy = compilePolicy(loaded);
    parentPort?.postMessage({
      id: request.id,
      ok: true,
      transfer: toTransfer(loaded),
      hash: policy.hash,
      name: policy.name,
    });
  } catch (error) {
    if (error instanceof PolicyLoadError) {
      parentPort?.postMessage({
        id: request.id,
        ok: false,
        issues: error.issues.map(({ file, line, col, message, help, frame }) => ({
          file,
          line,
          col,
          message,
          help,
          frame,
        })),
      });
    } else {
      parentPort?.postMessage({
        id: request.id,
        ok: false,
        error: (error as Error)?.message ?? String(error),
      });
    }
  }
});
