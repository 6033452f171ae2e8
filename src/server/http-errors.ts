import type { ToolwardenErrorCode } from "../core/index.js";
import { ToolwardenError } from "../core/index.js";

export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 422 | 500 | 503;

/** An error a route handler throws; the app's one `onError` turns it into `{error: {code, message, issues?}}`. */
export class HttpError extends Error {
  constructor(
    readonly status: ErrorStatus,
    readonly code: string,
    message: string,
    readonly issues?: Array<{ path: string; message: string }>,
  ) {
    super(message);
    this.name = "HttpError";
  }
}

/** The HTTP status of each `ToolwardenError` code a route can meet; one table instead of comparisons in handlers. */
export const STATUS_BY_CODE: Partial<Record<ToolwardenErrorCode, ErrorStatus>> = {
  policy_invalid: 422,
  policy_compile: 422,
  plan_invalid: 422,
  scope_invalid: 422,
  key_agent: 400,
  key_attrs: 400,
  version_unknown: 404,
  no_rollback: 409,
  version_changed: 409,
  session_refused: 409,
  keys_busy: 409,
  store_unavailable: 503,
};

/** The status for an error: an `HttpError`'s own, a `ToolwardenError`'s from the table, else `fallback`. */
export function statusOf(error: unknown, fallback: ErrorStatus = 500): ErrorStatus {
  if (error instanceof HttpError) return error.status;
  if (error instanceof ToolwardenError) return STATUS_BY_CODE[error.code] ?? fallback;
  return fallback;
}
