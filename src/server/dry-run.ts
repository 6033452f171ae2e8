import type { Call, Decision, Verdict } from "../core/index.js";
import { evaluateCall } from "../gateway/index.js";
import type { CompiledPolicy } from "../policy/index.js";
import type { AuditReader } from "./audit-reader.js";

/** A call this server decided, with what was decided. */
export interface RecentCall {
  time: string;
  call: Call;
  verdict: Verdict;
  rule: string | null;
}

/**
 * The last calls this server decided, arguments included, for policy dry runs. Kept in memory
 * only: arguments may hold what the policy's `audit.args` keeps off disk.
 */
export class RecentCalls {
  readonly #items: Array<RecentCall | undefined>;
  #next = 0;
  #size = 0;

  constructor(readonly capacity = 1000) {
    this.#items = new Array(capacity);
  }

  push(call: Call, decision: Decision, time: string): void {
    this.#items[this.#next] = { time, call, verdict: decision.verdict, rule: decision.rule };
    this.#next = (this.#next + 1) % this.capacity;
    this.#size = Math.min(this.#size + 1, this.capacity);
  }

  /** Newest first. */
  newest(limit: number): RecentCall[] {
    const out: RecentCall[] = [];
    for (let i = 1; i <= Math.min(limit, this.#size); i++) {
      out.push(this.#items[(this.#next - i + this.capacity) % this.capacity] as RecentCall);
    }
    return out;
  }
}

export interface DryRunChange {
  time: string;
  tool: string;
  agent?: string;
  session?: string;
  recorded: { verdict: Verdict; rule: string | null };
  before: { verdict: Verdict; rule: string | null };
  after: { verdict: Verdict; rule: string | null; reason: string };
}

export interface DryRunResult {
  /** `memory`: calls decided since this server started; `audit`: records that carry `args`. */
  source: "memory" | "audit";
  compared: number;
  /** Calls whose verdict would change. */
  changed: DryRunChange[];
  /** Calls whose verdict stays but whose deciding rule would change. */
  ruleChanged: number;
  from: string;
  to: string;
  note: string;
}

/**
 * Which recent decisions a candidate policy would change. Both the active and the candidate policy
 * evaluate each call afresh, without session state (no flows, labels seen, limits or budget), so
 * the difference is the policies' alone; `recorded` is what was actually decided then.
 */
export async function dryRun(
  active: CompiledPolicy,
  candidate: CompiledPolicy,
  recent: RecentCalls,
  reader: AuditReader,
  limit: number,
): Promise<DryRunResult> {
  let source: DryRunResult["source"] = "memory";
  let calls = recent.newest(limit);
  if (calls.length === 0) {
    source = "audit";
    const page = await reader.query({ kind: "decision", withArgs: true, limit });
    calls = page.records
      .filter((r) => r.args && typeof r.args === "object" && typeof r.tool === "string" && r.verdict)
      .map((r) => ({
        time: r.time,
        call: {
          tool: r.tool as string,
          args: r.args as Record<string, unknown>,
          server: r.server,
          agent: r.agent ? { id: r.agent } : undefined,
          session: r.session,
        },
        verdict: r.verdict as Verdict,
        rule: r.rule ?? null,
      }));
  }
  const changed: DryRunChange[] = [];
  let ruleChanged = 0;
  for (const item of calls) {
    const before = evaluateCall(active, item.call, undefined);
    const after = evaluateCall(candidate, item.call, undefined);
    if (before.verdict === after.verdict) {
      if (before.rule !== after.rule) ruleChanged++;
      continue;
    }
    changed.push({
      time: item.time,
      tool: item.call.tool,
      agent: typeof item.call.agent?.id === "string" ? item.call.agent.id : undefined,
      session: item.call.session,
      recorded: { verdict: item.verdict, rule: item.rule },
      before: { verdict: before.verdict, rule: before.rule },
      after: { verdict: after.verdict, rule: after.rule, reason: after.reason },
    });
  }
  return {
    source,
    compared: calls.length,
    changed,
    ruleChanged,
    from: active.hash,
    to: candidate.hash,
    note:
      source === "memory"
        ? "calls decided since the server started, evaluated without session state (flows, limits, budget)"
        : "audit records that carry arguments (policy `audit: { args: full }`), evaluated without session state",
  };
}
