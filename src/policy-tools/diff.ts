import { Warden } from "../gateway/index.js";
import type { CompiledPolicy } from "../policy/index.js";

/** What changed between two policies: declarations, rules, and the decisions on both policies' test calls. */
export async function diffPolicies(a: CompiledPolicy, b: CompiledPolicy): Promise<string[]> {
  const ra = a.loaded.policy;
  const rb = b.loaded.policy;
  const changes: string[] = [];
  for (const key of ["default", "fail", "budget", "detect", "labels", "audit"] as const) {
    if (JSON.stringify(ra[key]) !== JSON.stringify(rb[key]))
      changes.push(`~ ${key}: ${JSON.stringify(ra[key])} -> ${JSON.stringify(rb[key])}`);
  }
  for (const verdict of ["allow", "flag", "ask", "deny"] as const) {
    const before = new Set(ra[verdict] ?? []);
    const after = new Set(rb[verdict] ?? []);
    for (const glob of after) if (!before.has(glob)) changes.push(`+ ${verdict}: ${glob}`);
    for (const glob of before) if (!after.has(glob)) changes.push(`- ${verdict}: ${glob}`);
  }
  named(changes, "tool", ra.tools ?? {}, rb.tools ?? {});
  named(changes, "rule", byName(ra.rules), byName(rb.rules));
  named(changes, "limit", byName(ra.limits), byName(rb.limits));
  // A call both policies test is compared once.
  const calls = new Map([...a.tests, ...b.tests].map(({ test }) => [JSON.stringify(test.call), test.call]));
  for (const call of calls.values()) {
    const da = new Warden(a).evaluate(call);
    const db = new Warden(b).evaluate(call);
    if (da.verdict !== db.verdict) {
      changes.push(
        `! ${call.tool} ${JSON.stringify(call.args ?? {})}: ${da.verdict} (${da.rule ?? "default"}) -> ${db.verdict} (${db.rule ?? "default"})`,
      );
    }
  }
  return changes;
}

function byName<T extends { name: string }>(items: T[] | undefined): Record<string, T> {
  return Object.fromEntries((items ?? []).map((item) => [item.name, item]));
}

function named(
  changes: string[],
  what: string,
  before: Record<string, unknown>,
  after: Record<string, unknown>,
): void {
  for (const name of Object.keys(after)) {
    if (!(name in before)) changes.push(`+ ${what} ${name}: ${JSON.stringify(after[name])}`);
    else if (JSON.stringify(before[name]) !== JSON.stringify(after[name])) {
      changes.push(`~ ${what} ${name}: ${JSON.stringify(before[name])} -> ${JSON.stringify(after[name])}`);
    }
  }
  for (const name of Object.keys(before)) if (!(name in after)) changes.push(`- ${what} ${name}`);
}
