import type { Finding } from "../core/index.js";
import type { CompiledPolicy, DetectorUse, OutputAction } from "../policy/index.js";

/** What output detectors found in one tool output, and what the model may see of it. */
export interface OutputScan {
  /** The output to hand on: the original, or a masked copy (`mask`). */
  output: unknown;
  /** The most severe action of a detector that found something (`deny > mask > label`). */
  action?: OutputAction;
  findings: Finding[];
}

const RANK: Record<OutputAction, number> = { label: 1, mask: 2, deny: 3 };
const WITHHELD = "[REDACTED]";

/** The detectors that apply to `tool`'s outputs (its own `detect`, else the policy's). */
export function outputDetectors(policy: CompiledPolicy, tool: string): readonly DetectorUse[] {
  const uses = policy.tools.get(tool)?.detectors ?? policy.detectors;
  // Most tools scan no output: answer without allocating.
  for (const use of uses) if (use.outputs !== undefined) return uses.filter((u) => u.outputs !== undefined);
  return NO_USES;
}

const NO_USES: readonly DetectorUse[] = [];

/**
 * Runs the output detectors over `output` (strings anywhere in it; the same decoding layers as
 * for arguments). `mask` replaces each hit in a copy (a detector without `mask` withholds the
 * whole string); the original is never changed.
 */
export function scanOutput(uses: readonly DetectorUse[], output: unknown): OutputScan {
  const findings: Finding[] = [];
  let action: OutputAction | undefined;
  let result = output;
  for (const use of uses) {
    const act = use.outputs!;
    const found: Finding[] = [];
    if (act === "mask") {
      result = maskValue(result, "", use, found, 0);
    } else if (use.detector.scanValue) {
      use.detector.scanValue(output, "", found);
    } else {
      eachString(output, "", (text, path) => use.detector.scan(text, path, found));
    }
    if (found.length === 0) continue;
    for (const finding of found) findings.push({ ...finding, verdict: act === "deny" ? "deny" : "flag" });
    if (action === undefined || RANK[act] > RANK[action]) action = act;
  }
  return { output: action === "mask" ? result : output, action, findings };
}

const MAX_DEPTH = 256;

function maskValue(value: unknown, path: string, use: DetectorUse, found: Finding[], depth: number): unknown {
  if (typeof value === "string") {
    const before = found.length;
    if (use.detector.mask) {
      const masked = use.detector.mask(value);
      for (const finding of masked.findings) found.push({ ...finding, arg: path });
      return masked.findings.length ? masked.text : value;
    }
    use.detector.scan(value, path, found);
    return found.length > before ? WITHHELD : value;
  }
  if (depth > MAX_DEPTH || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const next = maskValue(value[i], path ? `${path}.${i}` : String(i), use, found, depth + 1);
      if (next !== value[i]) (copy ??= [...value])[i] = next;
    }
    return copy ?? value;
  }
  let copy: Record<string, unknown> | undefined;
  for (const key of Object.keys(value)) {
    const item = (value as Record<string, unknown>)[key];
    const next = maskValue(item, path ? `${path}.${key}` : key, use, found, depth + 1);
    if (next !== item) (copy ??= { ...(value as Record<string, unknown>) })[key] = next;
  }
  return copy ?? value;
}

function eachString(
  value: unknown,
  path: string,
  visit: (text: string, path: string) => void,
  depth = 0,
): void {
  if (typeof value === "string") visit(value, path);
  else if (depth > MAX_DEPTH || value === null || typeof value !== "object") return;
  else if (Array.isArray(value))
    for (let i = 0; i < value.length; i++)
      eachString(value[i], path ? `${path}.${i}` : String(i), visit, depth + 1);
  else
    for (const key of Object.keys(value))
      eachString((value as Record<string, unknown>)[key], path ? `${path}.${key}` : key, visit, depth + 1);
}
