/** What the monitor decides for one call. */
export type Verdict = "allow" | "flag" | "ask" | "deny";

export const VERDICTS: readonly Verdict[] = ["allow", "flag", "ask", "deny"];

/** Severity rank: deny > ask > flag > allow. */
export const SEVERITY: Readonly<Record<Verdict, number>> = { allow: 0, flag: 1, ask: 2, deny: 3 };

export function moreSevere(a: Verdict, b: Verdict): Verdict {
  return SEVERITY[a] >= SEVERITY[b] ? a : b;
}

export function isVerdict(value: unknown): value is Verdict {
  return value === "allow" || value === "flag" || value === "ask" || value === "deny";
}

export type RiskLevel = "minimal" | "low" | "moderate" | "high" | "critical";
export const RISK_LEVELS: readonly RiskLevel[] = ["minimal", "low", "moderate", "high", "critical"];
