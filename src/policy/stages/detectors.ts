import { DETECTORS } from "../../analyzers/index.js";
import type { DetectorUse } from "../compiled.js";
import type { DetectEntry } from "../schema.js";
import { didYouMean, issueAtPath } from "../source.js";
import type { PathSegment } from "../source.js";
import { parseOptions } from "./options.js";
import type { CompileState } from "./state.js";
import { originOf } from "./state.js";

/** Policy-wide `detect`, for undeclared tools and as the base each tool's own `detect` overrides. */
export function detectorsStage(state: CompileState): void {
  const { loaded } = state;
  state.detectors = compileDetectors(state.policy.detect ?? {}, (name, path, message, help) => {
    const origin = originOf(state, loaded.origins.detect.get(name), ["detect", name]);
    state.issues.push(
      issueAtPath(origin.source, [...origin.path, ...path], message, { help, atKey: path.length === 0 }),
    );
  });
}

/** A `detect` map, compiled; unknown detectors and bad options are reported, by detector name. */
export function compileDetectors(
  spec: Record<string, DetectEntry>,
  report: (name: string, path: PathSegment[], message: string, help?: string) => void,
): DetectorUse[] {
  const uses: DetectorUse[] = [];
  for (const [name, entry] of Object.entries(spec)) {
    const detector = DETECTORS.get(name);
    if (!detector) {
      const guess = didYouMean(name, DETECTORS.keys());
      report(
        name,
        [],
        `unknown detector \`${name}\``,
        guess ? `did you mean \`${guess}\`?` : `detectors: ${[...DETECTORS.keys()].join(", ")}`,
      );
      continue;
    }
    if (typeof entry === "string") {
      uses.push({ detector, verdict: entry });
      continue;
    }
    const { args, outputs, ...options } = entry;
    let configured = detector;
    if (detector.options && detector.configure) {
      const parsed = parseOptions(
        name,
        detector.options,
        options,
        (path, msg) => report(name, path, msg),
        false,
      );
      if (!parsed) continue;
      configured = detector.configure(parsed.data);
    } else {
      for (const key of Object.keys(options)) report(name, [key], `unknown \`${name}\` option \`${key}\``);
    }
    uses.push({
      detector: configured,
      verdict: args ?? "allow",
      outputs: outputs === "allow" ? undefined : outputs,
    });
  }
  return uses;
}

/** What actually runs: a detector switched off (`allow`, and no `outputs`) is left out. */
export function activeDetectors(uses: DetectorUse[]): DetectorUse[] {
  return uses.filter((use) => use.verdict !== "allow" || use.outputs !== undefined);
}

/** Tool-level `detect` overrides policy-wide entries; `allow` switches a detector off. */
export function mergeDetectors(base: DetectorUse[], own: DetectorUse[]): DetectorUse[] {
  const byName = new Map(base.map((use) => [use.detector.name, use]));
  for (const use of own) byName.set(use.detector.name, use);
  return activeDetectors([...byName.values()]);
}
