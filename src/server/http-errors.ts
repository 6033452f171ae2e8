import type { ToolwardenErrorCode } from "../core/index.js";
import { ToolwardenError } from "../core/index.js";

export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 422 | 500 | 503;

/** An error a route handler throws; the app's one `onError` turns it into `{error: {code, message, issues?}}`. */
export class HttpError extends Error {
  readonly issues?: Array<{ path: string; message: string }>;
  constructor(
    readonly status: ErrorStatus,
    readonly code: string,
    message: string,
    options?: { issues?: Array<{ path: string; message: string }>; cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "HttpError";
    if (options?.issues) this.issues = options.issues;
  }
}

/** A request body over `maxBytes`: 413, whether its length was declared or counted as it streamed. */
export function bodyTooLarge(maxBytes: number): HttpError {
  return new HttpError(413, "body_too_large", `the request body is larger than ${maxBytes} bytes`);
}

/**
 * The HTTP status of every `ToolwardenError` code: the one place a status is chosen for a code.
 * 500 is a failure of the server itself: the client sees `internal`, the log sees the message.
 */
export const STATUS_BY_CODE: Record<ToolwardenErrorCode, ErrorStatus> = {
  policy_invalid: 422,
  policy_compile: 422,
  plan_invalid: 422,
  scope_invalid: 422,
  key_agent: 400,
  key_attrs: 400,
  denied: 403,
  version_unknown: 404,
  approval_required: 409,
  no_rollback: 409,
  version_changed: 409,
  session_refused: 409,
  keys_busy: 409,
  // An uploaded policy that needs an engine this server lacks: the admin is told which package.
  missing_package: 409,
  versions_busy: 409,
  store_unavailable: 503,
  store_url: 500,
  audit_key: 500,
  audit_sink: 500,
  audit_records: 500,
  pin_ledger: 500,
  keys_file: 500,
  versions_file: 500,
  "url.private": 500,
  "url.metadata": 500,
};

/** The status for an error: an `HttpError`'s own, a `ToolwardenError`'s from the table, else 500. */
export function statusOf(error: unknown): ErrorStatus {
  if (error instanceof HttpError) return error.status;
  if (error instanceof ToolwardenError) return STATUS_BY_CODE[error.code];
  return 500;
}
