import type { Call, Decision } from "../core/index.js";
import { Warden } from "../gateway/index.js";
import type { CompiledPolicy, RawTest } from "../policy/index.js";
import { issueAtPath } from "../policy/source.js";
import { replayStep } from "./replay.js";

/** One test of a policy's `tests:`, run. */
export interface TestOutcome {
  name: string;
  where: string;
  ok: boolean;
  expected: string;
  got: Decision;
  /** The call the test decided (with its session). */
  call: Call;
}

/** Runs a policy's `tests:`; each test gets a fresh state (store, sessions). */
export async function runPolicyTests(policy: CompiledPolicy): Promise<TestOutcome[]> {
  const outcomes: TestOutcome[] = [];
  for (const [i, { test, origin }] of policy.tests.entries()) {
    const warden = new Warden(policy);
    const sessions = new Set<string>();
    const sessionId = test.call.session ?? `test-${i}`;
    for (const step of test.steps ?? []) await replayStep(warden, { ...step, session: sessionId }, sessions);
    const call = { ...test.call, session: sessionId };
    const got = await warden.decide(call);
    const where = issueAtPath(origin.source, origin.path, "");
    outcomes.push({
      name:
        test.name ??
        `${test.call.tool} -> ${typeof test.expect === "string" ? test.expect : test.expect.verdict}`,
      where: `${where.file}:${where.line}:${where.col}`,
      ok: matches(test.expect, got),
      expected: describe(test.expect),
      got,
      call,
    });
    await warden.close();
  }
  return outcomes;
}

function matches(expect: RawTest["expect"], got: Decision): boolean {
  if (typeof expect === "string") return got.verdict === expect;
  if (got.verdict !== expect.verdict) return false;
  if (expect.rule !== undefined && got.rule !== expect.rule) return false;
  if (expect.findings) {
    const codes = new Set(got.findings.map((f) => f.code));
    if (!expect.findings.every((code) => codes.has(code))) return false;
  }
  return true;
}

function describe(expect: RawTest["expect"]): string {
  if (typeof expect === "string") return expect;
  const parts: string[] = [expect.verdict];
  if (expect.rule !== undefined) parts.push(`rule ${expect.rule}`);
  if (expect.findings) parts.push(`findings ${expect.findings.join(",")}`);
  return parts.join(", ");
}
