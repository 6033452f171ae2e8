import type { CompiledPolicy } from "./compiled.js";

/** A readable account of what a policy does. */
export function explainPolicy(policy: CompiledPolicy): string {
  const raw = policy.loaded.policy;
  const out: string[] = [];
  out.push(`policy ${policy.name} (sha256 ${policy.hash.slice(0, 12)})`);
  out.push(`  files: ${policy.loaded.sources.map((s) => s.file).join(", ")}`);
  out.push(
    `  when nothing matches: ${policy.defaultVerdict}; on an internal error: ${policy.failOpen ? "allow, flagged (fail: open)" : "deny (fail: closed)"}`,
  );
  out.push("  verdicts combine as deny > ask > flag > allow; every match counts, order never matters");
  for (const verdict of ["deny", "ask", "flag", "allow"] as const) {
    const globs = raw[verdict] ?? [];
    if (globs.length) out.push(`  ${verdict.padEnd(5)} tools: ${globs.join(", ")}`);
  }
  if (policy.tools.size) out.push("", "tools:");
  for (const tool of policy.tools.values()) {
    const traits = [
      tool.produces.length ? `produces ${tool.produces.join(", ")}` : "",
      tool.sink ? `sink ${tool.sink}` : "",
      tool.risk ? `risk ${tool.risk}` : "",
      tool.cost !== undefined ? `cost ${tool.cost}` : "",
      tool.propagates ? "propagates the labels that flow into it" : "",
      tool.declassifies.length ? `declassifies ${tool.declassifies.join(", ")}` : "",
      policy.valueSetTools.has(tool.name) ? "a trusted value set for `from` (its parts with no label)" : "",
    ].filter(Boolean);
    out.push(`  ${tool.name}${traits.length ? ` (${traits.join("; ")})` : ""}`);
    if (tool.fields.length) {
      const raw = Object.entries(policy.loaded.policy.tools?.[tool.name]?.fields ?? {});
      out.push(
        `    fields: ${raw.map(([path, labels]) => `${path} -> ${labels.length ? labels.join(", ") : "no label"}`).join("; ")}`,
      );
      const all = [...new Set([...tool.produces, ...tool.fields.flatMap((f) => f.labels)])].filter(
        (label) => !tool.declassifies.includes(label),
      );
      out.push(
        `    on objects and their JSON or YAML text; other text carries ${all.length ? all.join(", ") : "no label"}`,
      );
    }
    for (const [arg, spec] of Object.entries(raw.tools?.[tool.name]?.args ?? {})) {
      out.push(`    ${arg}: ${JSON.stringify(spec)} -> ${tool.onViolation} on violation`);
    }
    if (tool.detectors.length) out.push(`    detect: ${tool.detectors.map(describeDetector).join(", ")}`);
  }
  if (policy.detectors.length)
    out.push("", `detect in every argument: ${policy.detectors.map(describeDetector).join(", ")}`);
  if (raw.rules?.length) out.push("", "rules:");
  for (const rule of raw.rules ?? []) {
    out.push(
      `  ${rule.verdict.padEnd(5)} ${rule.name}: when ${JSON.stringify(rule.when ?? {})}${rule.message ? ` — ${rule.message}` : ""}`,
    );
  }
  if (policy.limits.length) out.push("", "limits:");
  for (const limit of policy.limits) out.push(`  ${limit.name}: ${limit.describe} -> ${limit.verdict}`);
  if (policy.budget) {
    const { max, askAbove, per } = policy.budget;
    out.push(
      "",
      `budget: ${max} per ${per}${askAbove !== undefined ? `; a call costing more than ${askAbove} asks` : ""}`,
    );
  }
  if (policy.tests.length) out.push("", `tests: ${policy.tests.length} (run with \`toolwarden test\`)`);
  if (policy.warnings.length)
    out.push("", "warnings:", ...policy.warnings.map((w) => `  ${w.line}:${w.col}: ${w.message}`));
  return out.join("\n");
}

/** `secrets -> deny`, and what it does to outputs when it scans them: `secrets -> deny, outputs: mask`. */
function describeDetector(use: { detector: { name: string }; verdict: string; outputs?: string }): string {
  return `${use.detector.name} -> ${use.verdict}${use.outputs ? `, outputs: ${use.outputs}` : ""}`;
}
