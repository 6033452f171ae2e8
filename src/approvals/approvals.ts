import { randomUUID } from "node:crypto";
import { scanSecrets } from "../analyzers/secrets/detector.js";
import type { Call, Decision, Finding } from "../core/index.js";
import { approvalRule, BUILTIN_RULES } from "../core/index.js";
import { auditArgs } from "../core/redact.js";
import { overrule } from "../gateway/combine.js";
import { valueAt } from "../gateway/inspect.js";
import { isExpired } from "../stores/approval.js";
import type { AuditEvent } from "../audit/types.js";
import type { Approval, StateStore } from "../stores/types.js";

/** How asks wait for a human; `WardenOptions.approvals`. */
export interface ApprovalSettings {
  /** How long a waiting call waits for a human (ms). 0: do not wait. Default 0. */
  wait?: number;
  /** How long a pending approval stays valid (ms). Default 15 minutes. */
  ttl?: number;
  /** How often a waiting call polls the store (ms). Default 200. */
  poll?: number;
  /**
   * How often a Warden audits decisions that others made in the store on approvals it asked
   * for (`toolwarden approvals --store`, another replica), when it has an audit sink (ms). Default 2000.
   */
  auditPoll?: number;
}

export const APPROVAL_DEFAULTS: Readonly<Required<Omit<ApprovalSettings, "auditPoll">>> = Object.freeze({
  wait: 0,
  ttl: 15 * 60_000,
  poll: 200,
});

/** What asks a human: the call (bound by `callHash`), the rule and reason, and the findings whose values are masked. */
export interface ApprovalRequest {
  call: Call;
  callHash: string;
  rule: string | null;
  reason: string;
  findings?: readonly Finding[];
  /** How long this approval stays valid (ms); default the settings' `ttl`. */
  ttl?: number;
}

export interface WaitOptions {
  /** How long to wait (ms); default the settings' `wait`. */
  ms?: number;
  /** How often to poll the store (ms); default the settings' `poll`. */
  poll?: number;
  /** Ends the wait early (the client went away); resolves undefined. */
  signal?: AbortSignal;
  /** Tells the waiter at once when an approval changes on this process (the server's event bus). */
  subscribe?: (listener: (approval: Approval) => void) => () => void;
}

/**
 * Human approvals for one Warden: every path that asks (the Warden, the HTTP server, the SDK
 * guard, the MCP gate) requests, redeems, waits and settles here, so all of them read the same
 * clock and show approvers the same redacted summary.
 */
export class Approvals {
  readonly settings: Readonly<Required<Omit<ApprovalSettings, "auditPoll">>>;

  constructor(
    readonly store: StateStore,
    /** The Warden's clock (`WardenOptions.now`): creation, expiry, decisions and use. */
    readonly now: () => number,
    settings: ApprovalSettings = {},
  ) {
    this.settings = {
      wait: settings.wait ?? APPROVAL_DEFAULTS.wait,
      ttl: settings.ttl ?? APPROVAL_DEFAULTS.ttl,
      poll: settings.poll ?? APPROVAL_DEFAULTS.poll,
    };
  }

  /** Records a pending approval for this exact call and returns it. */
  async request(request: ApprovalRequest): Promise<Approval> {
    const { call } = request;
    const now = this.now();
    const approval: Approval = {
      id: randomUUID(),
      status: "pending",
      callHash: request.callHash,
      tool: call.tool,
      server: call.server,
      agent: typeof call.agent?.id === "string" ? call.agent.id : undefined,
      session: call.session,
      rule: request.rule,
      reason: request.reason,
      argsSummary: summarizeArgs(call.args, request.findings ?? []),
      createdAt: now,
      expiresAt: now + (request.ttl ?? this.settings.ttl),
    };
    await this.store.putApproval(approval);
    return approval;
  }

  /** Uses an approved, unexpired approval of this exact call (once); undefined when there is none. */
  redeem(callHash: string): Promise<Approval | undefined> {
    return this.store.useApproval(callHash, this.now());
  }

  /** A human's answer; undefined when the approval is not pending (decided already, expired, unknown). */
  settle(
    id: string,
    status: "approved" | "denied",
    by: string,
    reason?: string,
  ): Promise<Approval | undefined> {
    return this.store.decideApproval(id, status, by, reason, this.now());
  }

  /**
   * Waits until approval `id` is decided or expires (by this clock), for at most `ms`. Resolves
   * the approval (status approved, denied or expired), or undefined when the wait ends or `signal`
   * aborts. Polls the store for decisions made elsewhere (another replica, the CLI).
   */
  wait(id: string, options: WaitOptions = {}): Promise<Approval | undefined> {
    const ms = options.ms ?? this.settings.wait;
    const { signal } = options;
    const every = options.poll ?? this.settings.poll;
    if (ms <= 0 || signal?.aborted) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      let done = false;
      const finish = (approval: Approval | undefined) => {
        if (done) return;
        done = true;
        unsubscribe?.();
        clearTimeout(deadline);
        clearTimeout(next);
        signal?.removeEventListener("abort", onAbort);
        resolve(approval);
      };
      const settled = (approval: Approval | undefined): Approval | undefined => {
        if (!approval || approval.id !== id) return undefined;
        if (approval.status === "pending" && isExpired(approval, this.now()))
          return { ...approval, status: "expired" };
        return approval.status === "pending" ? undefined : approval;
      };
      let next: ReturnType<typeof setTimeout> | undefined;
      const poll = () => {
        this.store.getApproval(id).then(
          (approval) => {
            if (done) return;
            if (!approval) return finish(undefined);
            const found = settled(approval);
            if (found) finish(found);
            else next = setTimeout(poll, every);
          },
          () => {
            if (!done) next = setTimeout(poll, every);
          },
        );
      };
      const unsubscribe = options.subscribe?.((approval) => {
        const found = settled(approval);
        if (found) finish(found);
      });
      const deadline = setTimeout(() => finish(undefined), ms);
      const onAbort = () => finish(undefined);
      signal?.addEventListener("abort", onAbort);
      poll();
    });
  }
}

/**
 * What approvers see of the arguments: at most 500 characters of their JSON, with every string
 * the secrets detector flags masked, and every value a finding (`secret.*`) points at.
 */
export function summarizeArgs(
  args: Record<string, unknown> | undefined,
  findings: readonly Finding[],
): string {
  const flagged = flaggedValues(args, findings);
  const mask = (text: string) => (flagged.has(text) || holdsSecret(text) ? "[redacted secret]" : text);
  const text = JSON.stringify(auditArgs(args ?? {}, "full", mask).args);
  return text.length > 500 ? `${text.slice(0, 500)}…` : text;
}

/** A masking function for the argument strings that a `secret.*` finding points at (for audit records). */
export function maskFlagged(
  args: Record<string, unknown> | undefined,
  findings: readonly Finding[],
): ((text: string) => string) | undefined {
  const flagged = flaggedValues(args, findings);
  if (!flagged.size) return undefined;
  return (text) => (flagged.has(text) ? "[redacted secret]" : text);
}

function flaggedValues(
  args: Record<string, unknown> | undefined,
  findings: readonly Finding[],
): Set<unknown> {
  const flagged = new Set<unknown>();
  for (const finding of findings) {
    if (finding.code.startsWith("secret.") && finding.arg !== undefined)
      flagged.add(valueAt(args ?? {}, finding.arg.split(".")));
  }
  return flagged;
}

function holdsSecret(text: string): boolean {
  const found: Finding[] = [];
  scanSecrets(text, "", found);
  return found.length > 0;
}

/**
 * The decision once a human answered (or did not): approved, the approval decides `allow`;
 * denied or expired, `deny`; `undefined` (no answer within `waited` ms), `approval-timeout`.
 */
export function answered(decision: Decision, approval: Approval | undefined, waited: number): Decision {
  if (approval?.status === "approved" || approval?.status === "used") {
    const why = approval.decisionReason ? `: ${approval.decisionReason}` : "";
    const allowed = overrule(decision, {
      verdict: "allow",
      rule: approvalRule(approval.id),
      reason: `approved by ${approval.decidedBy ?? "an approver"}${why} (was: ${decision.reason})`,
    });
    allowed.approval = approval.id;
    return allowed;
  }
  if (approval?.status === "denied") {
    const why = approval.decisionReason ? `: ${approval.decisionReason}` : "";
    return overrule(decision, {
      verdict: "deny",
      rule: approvalRule(approval.id),
      reason: `denied by ${approval.decidedBy ?? "an approver"}${why}`,
    });
  }
  if (approval?.status === "expired") {
    return overrule(decision, {
      verdict: "deny",
      rule: BUILTIN_RULES.approvalTimeout,
      reason: `approval ${approval.id} expired before anyone approved it (was: ${decision.reason})`,
    });
  }
  return overrule(decision, {
    verdict: "deny",
    rule: BUILTIN_RULES.approvalTimeout,
    reason: `no approval within ${Math.round(waited / 1000)}s (was: ${decision.reason})`,
  });
}

/**
 * The audit record of a human's answer to an approval, the same from every path that takes
 * answers (the server, the CLI, an SDK's own approval flow, the Warden's watch on the store).
 */
export function approvalEvent(
  approval: Approval,
  status: "approved" | "denied",
  by: string,
  reason: string | undefined,
  data: Record<string, unknown> = {},
): Omit<AuditEvent, "time"> {
  return {
    kind: "approval",
    tool: approval.tool,
    server: approval.server,
    agent: approval.agent,
    session: approval.session,
    rule: approval.rule,
    reason: approval.reason,
    approval: { id: approval.id, status, by, ...(reason ? { reason } : {}) },
    data: { ...data, callHash: approval.callHash },
  };
}
