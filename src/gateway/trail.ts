import { approvalEvent, maskFlagged } from "../approvals/approvals.js";
import type { AuditEvent, AuditSink } from "../audit/types.js";
import { hashValue } from "../core/canonical.js";
import type { Call, Decision } from "../core/index.js";
import { BUILTIN_RULES, mayRun } from "../core/index.js";
import { auditArgs } from "../core/redact.js";
import type { JudgedDecision } from "../judge/apply.js";
import type { CompiledPolicy } from "../policy/index.js";
import type { StateStore } from "../stores/types.js";
import { contribute } from "./combine.js";

/**
 * The audit trail of one Warden: a record per decision (a call that would run is denied when
 * its record cannot be kept, unless `fail: open`), other events, and the answers given elsewhere
 * to approvals this Warden asked for.
 */
export class DecisionTrail {
  private readonly unaudited = new Set<string>();
  private auditTimer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly sink: AuditSink,
    private readonly store: StateStore,
    private readonly now: () => number,
    /** The policy in force (it can be swapped while the Warden runs). */
    private readonly policy: () => CompiledPolicy,
    /** How often answers given elsewhere are looked for (ms). Default 2000. */
    private readonly auditPoll = 2000,
  ) {}

  /** Writes the audit record; if it cannot be kept, a call that would run is denied (unless `fail: open`). */
  async record(call: Call, decision: Decision): Promise<Decision> {
    const backlog = (this.sink as { overBound?: boolean }).overBound === true;
    // A call that will run (observed ones too) is not run unrecorded under `fail: closed`.
    if (backlog && !this.policy().failOpen && mayRun(decision)) {
      decision = contribute(enforcedAgain(decision), {
        verdict: "deny",
        rule: BUILTIN_RULES.auditBacklog,
        reason: "an audit sink is down and its spool is over its bound; fail: closed denies until it drains",
      });
    }
    try {
      await this.appendDecision(call, decision);
      return decision;
    } catch (error) {
      if (this.policy().failOpen || !mayRun(decision)) return decision;
      return contribute(enforcedAgain(decision), {
        verdict: "deny",
        rule: BUILTIN_RULES.auditUnavailable,
        reason: `the audit trail cannot record this call (${(error as Error).message}); fail: closed denies`,
      });
    }
  }

  /**
   * Appends the decision's record. If the full record cannot be built or written, a minimal one
   * (tool, verdict, rule, reason, the arguments' hash when it can be computed) is tried, so a
   * call the record cannot describe in full is still on the trail.
   */
  private async appendDecision(call: Call, decision: Decision): Promise<void> {
    try {
      await this.sink.append(this.auditEvent(call, decision));
    } catch (error) {
      await this.sink.append(this.minimalAuditEvent(call, decision, error));
    }
  }

  private minimalAuditEvent(call: Call, decision: Decision, error: unknown): AuditEvent {
    let argsHash: string | undefined;
    try {
      argsHash = hashValue(call?.args ?? {});
    } catch {
      // arguments that cannot even be hashed: the record says so below
    }
    return {
      kind: "decision",
      time: this.isoNow(),
      session: typeof call?.session === "string" ? call.session : undefined,
      agent: typeof call?.agent?.id === "string" ? call.agent.id : undefined,
      tool: typeof call?.tool === "string" ? call.tool : undefined,
      verdict: decision.verdict,
      rule: decision.rule,
      reason: String(decision.reason).slice(0, 4096),
      findings: [],
      labels: [],
      argsHash,
      policy: this.policy().hash,
      data: {
        incomplete: `the full record could not be written: ${String((error as Error)?.message ?? error).slice(0, 512)}`,
      },
    };
  }

  private auditEvent(call: Call, decision: Decision): AuditEvent {
    const policy = this.policy();
    const { argsHash, args } = auditArgs(
      call.args ?? {},
      policy.auditArgs,
      maskFlagged(call.args, decision.findings),
    );
    // One object shape for every decision (optional fields are undefined, which records leave out):
    // spreads made a new shape per combination, and the record writer copies this object anyway.
    const judge = (decision as JudgedDecision).judge;
    return {
      kind: "decision",
      time: this.isoNow(),
      session: call.session,
      agent: typeof call.agent?.id === "string" ? call.agent.id : undefined,
      tool: typeof call.tool === "string" ? call.tool : undefined,
      server: call.server,
      verdict: decision.verdict,
      enforced: decision.enforced === false ? false : undefined,
      observed: decision.observed?.length ? decision.observed : undefined,
      matched: decision.matched?.length ? decision.matched : undefined,
      rule: decision.rule,
      reason: decision.reason,
      findings: decision.findings,
      labels: decision.labels,
      flows: decision.flows,
      argsHash,
      args,
      policy: policy.hash,
      data: judge ? { judge } : undefined,
      approval: decision.approval
        ? { id: decision.approval, status: decision.verdict === "ask" ? "pending" : "used" }
        : undefined,
    };
  }

  #isoMs = Number.NaN;
  #iso = "";
  /** The clock as ISO-8601 text, formatted once per millisecond (formatting costs more than a decision). */
  private isoNow(): string {
    const ms = this.now();
    if (ms !== this.#isoMs) {
      this.#iso = new Date(ms).toISOString();
      this.#isoMs = ms;
    }
    return this.#iso;
  }

  /** Audits an event that is not a decision (an approval, a policy change, a pin). */
  async append(event: Omit<AuditEvent, "time"> & { time?: string }): Promise<void> {
    await this.sink.append({ time: this.isoNow(), ...event });
    // An approval decision audited here (server, SDK adapter) is not audited again by the store watch.
    if (event.kind === "approval" && event.approval?.id && event.approval.status !== "pending")
      this.unaudited.delete(event.approval.id);
  }

  /** Remembers an approval this Warden asked for, so its decision is audited whoever makes it. */
  watchApproval(id: string): void {
    this.unaudited.add(id);
    if (this.auditTimer) return;
    this.auditTimer = setInterval(() => {
      this.auditApprovalDecisions().catch((error) =>
        process.emitWarning(`toolwarden: cannot audit approval decisions: ${(error as Error).message}`),
      );
    }, this.auditPoll);
    this.auditTimer.unref();
  }

  /**
   * Audits, once each, the decisions made in the store on approvals this Warden asked for, by
   * whoever made them (`toolwarden approvals --store`, another replica, a dashboard): an
   * `approval` record with the approver and the reason. Runs on a timer while approvals are
   * open and on `close`. A decision younger than a second is left for the next round unless
   * `all`: a server or adapter in this process audits its own decisions just after making them.
   */
  async auditApprovalDecisions(all = false): Promise<void> {
    for (const id of [...this.unaudited]) {
      const approval = await this.store.getApproval(id);
      if (!approval || approval.status === "pending") {
        if (!approval) this.unaudited.delete(id);
        continue;
      }
      if (!all && approval.decidedAt !== undefined && this.now() - approval.decidedAt < 1000) continue;
      if (!this.unaudited.delete(id)) continue;
      if (!approval.decidedBy) continue; // expired without a decision: the expiry is audited where it is noticed
      const status = approval.status === "denied" ? "denied" : "approved";
      await this.sink
        .append({
          time: new Date(approval.decidedAt ?? this.now()).toISOString(),
          ...approvalEvent(approval, status, approval.decidedBy, approval.decisionReason, { via: "store" }),
        })
        .catch((error) => {
          this.unaudited.add(id);
          throw error;
        });
    }
    if (!this.unaudited.size && this.auditTimer) {
      clearInterval(this.auditTimer);
      this.auditTimer = undefined;
    }
  }

  /** Audits what is left and stops the timer; then closes the sink. */
  async close(): Promise<void> {
    if (this.unaudited.size) await this.auditApprovalDecisions(true).catch(() => {});
    if (this.auditTimer) clearInterval(this.auditTimer);
    this.auditTimer = undefined;
    await this.sink.close();
  }
}

/** The decision without the observe stage's marks, for a stage that must be enforced (the audit trail failing). */
function enforcedAgain(decision: Decision): Decision {
  if (decision.enforced !== false && !decision.observed) return decision;
  const { enforced: _enforced, observed: _observed, ...rest } = decision;
  return rest;
}
