import { describe, expect, it } from "vitest";
import { ERROR_CODES, ToolwardenError, type ToolwardenErrorCode } from "../core/index.js";
import { HttpError, STATUS_BY_CODE, statusOf } from "./http-errors.js";

describe("error codes and HTTP statuses", () => {
  it("the status table has exactly the ToolwardenError codes", () => {
    expect(Object.keys(STATUS_BY_CODE).sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  it.each(Object.keys(ERROR_CODES) as ToolwardenErrorCode[])("%s maps to an HTTP error status", (code) => {
    expect([400, 401, 403, 404, 409, 413, 422, 500, 503]).toContain(statusOf(new ToolwardenError(code, "x")));
  });

  it("maps errors through the table, an HttpError by its own status, anything else to 500", () => {
    expect(statusOf(new ToolwardenError("version_unknown", "x"))).toBe(404);
    expect(statusOf(new ToolwardenError("plan_invalid", "x"))).toBe(422);
    expect(statusOf(new ToolwardenError("audit_key", "x"))).toBe(500);
    expect(statusOf(new HttpError(413, "too_large", "x"))).toBe(413);
    expect(statusOf(new Error("x"))).toBe(500);
  });
});
