import { Warden } from "../gateway/index.js";
import { compilePolicyObject } from "../policy/index.js";
import { measureAsync, measureSync } from "./harness.js";
import type { BenchResult } from "./harness.js";

/** A policy with `n` rules: most name one tool each (as real policies do), a tenth apply to every tool. */
export function syntheticPolicy(n: number): unknown {
  const global = Math.max(1, Math.floor(n / 10));
  const rules = [];
  for (let i = 0; i < n - global; i++) {
    rules.push({
      name: `tool-rule-${i}`,
      when: { tool: `tool_${i}`, "args.amount": { gt: i } },
      verdict: i % 2 ? "deny" : "ask",
    });
  }
  for (let i = 0; i < global; i++) {
    rules.push({
      name: `global-rule-${i}`,
      when: { [`args.field_${i}`]: { eq: "forbidden" } },
      verdict: "deny",
    });
  }
  return { version: 1, name: `synthetic-${n}`, default: "deny", allow: ["search_docs"], rules };
}

const searchDocs = async (args: { query: string }) => args.query.length;
const rawSync = (args: { query: string }) => args.query.length;

/** The core scenarios of `toolwarden bench`: raw calls, decisions on 1/100/1,000 rules, wrapped calls. */
export async function coreScenarios(): Promise<BenchResult[]> {
  const call = { tool: "search_docs", args: { query: "refund policy" } };
  const results: BenchResult[] = [];
  // Rotating inputs keep the JIT from hoisting the raw call out of the loop.
  const inputs = ["refund policy", "shipping times", "warranty", "returns"].map((query) => ({ query }));
  let turn = 0;
  results.push(measureSync("raw function call (sync)", () => rawSync(inputs[turn++ & 3])));
  results.push(await measureAsync("raw function call (async, awaited)", () => searchDocs(call.args)));
  for (const n of [1, 100, 1000]) {
    const warden = new Warden(compilePolicyObject(syntheticPolicy(n)));
    results.push(measureSync(`evaluate allow, ${n}-rule policy`, () => warden.evaluate(call)));
  }
  const w100 = new Warden(compilePolicyObject(syntheticPolicy(100)));
  // Arguments as they arrive: parsed from JSON.
  const busyArgs = JSON.parse(
    JSON.stringify({ query: "refund policy", ...Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`field_${i}`, "fine"])) }),
  );
  results.push(
    measureSync("evaluate allow, 100-rule policy, 10 rules tested", () =>
      w100.evaluate({ tool: "search_docs", args: busyArgs }),
    ),
  );
  results.push(
    measureSync("evaluate deny (rule match), 100-rule policy", () =>
      w100.evaluate({ tool: "tool_3", args: { amount: 50 } }),
    ),
  );
  results.push(
    measureSync("evaluate deny (default), 100-rule policy", () =>
      w100.evaluate({ tool: "unknown_tool", args: {} }),
    ),
  );
  results.push(
    await measureAsync("decide deny (returned, not thrown)", () =>
      w100.decide({ tool: "tool_3", args: { amount: 50 } }),
    ),
  );
  const wrapped = w100.wrap("search_docs", searchDocs);
  results.push(await measureAsync("wrapped call, allowed (100-rule policy)", () => wrapped(call.args)));
  const denied = w100.wrap("tool_3", searchDocs as (args: unknown) => Promise<number>);
  results.push(
    await measureAsync(
      "wrapped call, denied (throws PolicyDeniedError)",
      () => denied({ amount: 50 }).catch((error: Error) => error.name.length),
      { batch: 2_000 },
    ),
  );
  return results;
}
