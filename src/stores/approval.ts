import type { Approval } from "./types.js";

/** How long finished approvals are kept after they expire before `expireApprovals` forgets them. */
export const DEFAULT_APPROVAL_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;

/** An approval can no longer be decided or used once `now` reaches `expiresAt`. */
export function isExpired(approval: Pick<Approval, "expiresAt">, now: number): boolean {
  return now >= approval.expiresAt;
}

/** True for the states an approval never leaves. */
export function isFinished(status: Approval["status"]): boolean {
  return status === "denied" || status === "expired" || status === "used";
}

/** A copy, so callers never hold a reference into a store's own state. */
export function copyApproval(approval: Approval): Approval {
  return { ...approval };
}
