import { describe, expect, it } from "vitest";
import { ERROR_CODES, ToolwardenError } from "../core/index.js";
import { HttpError, STATUS_BY_CODE, statusOf } from "./http-errors.js";

describe("error codes and HTTP statuses", () => {
  it("every code in the status table is a ToolwardenError code", () => {
    for (const code of Object.keys(STATUS_BY_CODE)) expect(Object.keys(ERROR_CODES)).toContain(code);
  });

  it("maps errors through the table, an HttpError by its own status, anything else to the fallback", () => {
    expect(statusOf(new ToolwardenError("version_unknown", "x"))).toBe(404);
    expect(statusOf(new ToolwardenError("plan_invalid", "x"))).toBe(422);
    expect(statusOf(new ToolwardenError("audit_key", "x"), 409)).toBe(409);
    expect(statusOf(new HttpError(413, "too_large", "x"))).toBe(413);
    expect(statusOf(new Error("x"))).toBe(500);
  });
});
