import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { measureSync } from "../bench/harness.js";
import type { BenchResult } from "../bench/harness.js";
import type { Call } from "../core/index.js";
import { Warden } from "../gateway/warden.js";

/** A Cedar policy set and the native rules that mean the same; the tests hold them equal on a table of calls. */
export const EQUIVALENT_CEDAR = `@id("no-delete")
forbid (principal, action == Action::"delete_file", resource);

@id("tmp-reads")
permit (principal, action == Action::"read_file", resource)
when { context.args has path && context.args.path like "/tmp/*" };

@id("small-refunds")
permit (principal is Agent, action == Action::"refund", resource)
when {
  context.args has amount && context.args.amount <= 100 &&
  principal has role && principal.role == "support"
};

@id("no-untrusted-email")
forbid (principal, action == Action::"send_email", resource)
when { context.labels.contains("untrusted") };

@id("emails")
permit (principal, action == Action::"send_email", resource);

@id("prod-admins-only")
forbid (principal, action, resource == Server::"prod")
unless { principal has role && principal.role == "admin" };
`;

export const EQUIVALENT_NATIVE = {
  version: 1,
  default: "deny",
  rules: [
    { name: "no-delete", when: { tool: "delete_file" }, verdict: "deny" },
    { name: "tmp-reads", when: { tool: "read_file", "args.path": { glob: "/tmp/*" } }, verdict: "allow" },
    {
      name: "small-refunds",
      when: { tool: "refund", "args.amount": { lte: 100 }, "agent.role": "support" },
      verdict: "allow",
    },
    { name: "no-untrusted-email", when: { tool: "send_email", flows: ["untrusted"] }, verdict: "deny" },
    { name: "emails", when: { tool: "send_email" }, verdict: "allow" },
    { name: "prod-admins-only", when: { server: "prod", not: { "agent.role": "admin" } }, verdict: "deny" },
  ],
};

/** Writes the Cedar side to `dir` and returns the policy that points at it. */
export function writeCedarPolicy(dir: string, cedar = EQUIVALENT_CEDAR): string {
  writeFileSync(join(dir, "authz.cedar"), cedar);
  const file = join(dir, "policy.yaml");
  writeFileSync(file, "version: 1\ndefault: deny\nengine:\n  cedar:\n    policies: ./authz.cedar\n");
  return file;
}

/** 100 permits, one per tool, and the native rules that say the same (FIELD.md's "100 policies" row). */
function hundred(): { cedar: string; native: unknown } {
  const tools = Array.from({ length: 100 }, (_, i) => `tool_${i}`);
  return {
    cedar: tools
      .map(
        (tool) =>
          `permit (principal, action == Action::"${tool}", resource) when { context.args has n && context.args.n < 10 };`,
      )
      .join("\n"),
    native: {
      version: 1,
      default: "deny",
      rules: tools.map((tool) => ({ name: tool, when: { tool, "args.n": { lt: 10 } }, verdict: "allow" })),
    },
  };
}

/**
 * Cedar (through `@cedar-policy/cedar-wasm`, policies pre-parsed) against the native engine on
 * the same policy and the same calls, via `Warden.evaluate`. Ratios are Cedar over native.
 */
export function cedarScenarios(): BenchResult[] {
  const dir = mkdtempSync(join(tmpdir(), "tw-cedar-bench-"));
  try {
    const cedar = Warden.fromFile(writeCedarPolicy(dir));
    const native = Warden.fromObject(EQUIVALENT_NATIVE);
    const calls: Array<[string, Call]> = [
      [
        "refund permitted",
        { tool: "refund", args: { order: "o-1", amount: 50 }, agent: { id: "bot", role: "support" } },
      ],
      ["delete forbidden", { tool: "delete_file", args: { path: "/tmp/x" }, agent: { id: "bot" } }],
      ["read, no decision", { tool: "read_file", args: { path: "/etc/hosts" }, agent: { id: "bot" } }],
    ];
    const results: BenchResult[] = [];
    for (const [label, call] of calls) {
      const a = measureSync(`native: ${label}`, () => native.evaluate(call), { batch: 20_000, samples: 15 });
      const b = measureSync(`cedar: ${label}`, () => cedar.evaluate(call), { batch: 500, samples: 15 });
      results.push(a, { ...b, note: `${(b.medianNs / a.medianNs).toFixed(0)}× native` });
    }
    const many = hundred();
    const manyDir = mkdtempSync(join(dir, "hundred-"));
    const cedarMany = Warden.fromFile(writeCedarPolicy(manyDir, many.cedar));
    const nativeMany = Warden.fromObject(many.native);
    const call: Call = { tool: "tool_57", args: { n: 3 }, agent: { id: "bot" } };
    const a = measureSync("native: 100 rules, permitted", () => nativeMany.evaluate(call), {
      batch: 20_000,
      samples: 15,
    });
    const b = measureSync("cedar: 100 policies, permitted", () => cedarMany.evaluate(call), {
      batch: 500,
      samples: 15,
    });
    results.push(a, { ...b, note: `${(b.medianNs / a.medianNs).toFixed(0)}× native` });
    return results;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
