import type { Verdict } from "../core/index.js";
import type { AuditRecord } from "./types.js";

/** How one rule (or limit, or finding code) fared in the audited decisions. */
export interface RuleCount {
  rule: string;
  /** Decisions it decided (the record's `rule`). */
  decided: number;
  /** Decisions it contributed to (decided, or listed in `matched` or `observed`). */
  matched: number;
  /** Of the decided ones, how many were observed, not enforced (`enforced: false`). */
  observed: number;
  byVerdict: Record<Verdict, number>;
}

export interface RuleStats {
  decisions: number;
  /** Decided by no rule: the policy's `default`. */
  byDefault: number;
  rules: RuleCount[];
  /** Names given as the policy's rules that matched no audited decision: the dead rules to question. */
  never: string[];
}

/**
 * Counts, over the decision records given (already filtered to a period), how often each rule
 * decided and contributed; with `policyRules` (the rules, shorthand entries and limits of a
 * policy), also which of them never matched anything.
 */
export async function ruleStats(
  records: AsyncIterable<AuditRecord> | Iterable<AuditRecord>,
  policyRules: readonly string[] = [],
): Promise<RuleStats> {
  const counts = new Map<string, RuleCount>();
  const entry = (rule: string) => {
    let count = counts.get(rule);
    if (!count) {
      count = {
        rule,
        decided: 0,
        matched: 0,
        observed: 0,
        byVerdict: { allow: 0, flag: 0, ask: 0, deny: 0 },
      };
      counts.set(rule, count);
    }
    return count;
  };
  let decisions = 0;
  let byDefault = 0;
  for await (const record of records) {
    if (record.kind !== "decision") continue;
    decisions++;
    if (!record.rule) byDefault++;
    else {
      const count = entry(record.rule);
      count.decided++;
      if (record.verdict) count.byVerdict[record.verdict]++;
      if (record.enforced === false) count.observed++;
    }
    const contributed = new Set([
      ...(record.rule ? [record.rule] : []),
      ...(record.matched ?? []),
      ...(record.observed ?? []),
    ]);
    for (const rule of contributed) entry(rule).matched++;
  }
  const rules = [...counts.values()].sort(
    (a, b) => b.decided - a.decided || b.matched - a.matched || a.rule.localeCompare(b.rule),
  );
  return { decisions, byDefault, rules, never: policyRules.filter((rule) => !counts.has(rule)) };
}
