import { CONSTRAINT_KINDS } from "../../analyzers/index.js";
import type { CompiledArgCheck, CompiledTool } from "../compiled.js";
import type { Report } from "../conditions.js";
import type { RawTool } from "../schema.js";
import { didYouMean } from "../source.js";
import type { PathSegment } from "../source.js";
import { activeDetectors, compileDetectors, mergeDetectors } from "./detectors.js";
import { parseOptions } from "./options.js";
import type { CompileState } from "./state.js";
import { originOf } from "./state.js";

/** `tools:`: each declaration's constraints (through the analyzer registry), detectors and labels. */
export function toolsStage(state: CompileState): void {
  for (const [name, decl] of Object.entries(state.policy.tools ?? {})) {
    const report = state.reporterFor(originOf(state, state.loaded.origins.tools.get(name), ["tools", name]));
    state.tools.set(name, compileTool(state, name, decl, report));
  }
}

function compileTool(state: CompileState, name: string, decl: RawTool, report: Report): CompiledTool {
  const checks: CompiledArgCheck[] = [];
  const asyncChecks: CompiledTool["asyncChecks"] = [];
  const required: Array<{ arg: string; path: string[] }> = [];
  for (const [arg, constraints] of Object.entries(decl.args ?? {})) {
    if (constraints === null || typeof constraints !== "object" || Array.isArray(constraints)) {
      report(["args", arg], "expected a mapping of constraint kinds, e.g. `{ url: { private: block } }`");
      continue;
    }
    for (const [kind, options] of Object.entries(constraints as Record<string, unknown>)) {
      const at: PathSegment[] = ["args", arg, kind];
      if (kind === "required") {
        if (typeof options !== "boolean") report(at, "`required` must be `true` or `false`");
        else if (options) required.push({ arg, path: arg.split(".") });
        continue;
      }
      const constraint = CONSTRAINT_KINDS.get(kind);
      if (!constraint) {
        const guess = didYouMean(kind, CONSTRAINT_KINDS.keys());
        report(
          at,
          `unknown constraint kind \`${kind}\``,
          guess ? `did you mean \`${guess}\`?` : `kinds: ${[...CONSTRAINT_KINDS.keys()].join(", ")}`,
          true,
        );
        continue;
      }
      const parsed = parseOptions(
        kind,
        constraint.options,
        options,
        (path, ...rest) => report([...at, ...path], ...rest),
        true,
      );
      if (!parsed) continue;
      const path = arg.split(".");
      try {
        checks.push({ arg, path, kind, check: constraint.compile(parsed.data) });
        const loading = constraint.load?.(parsed.data);
        if (loading) state.loads.push(loading);
        const asyncCheck = constraint.compileAsync?.(parsed.data);
        if (asyncCheck) asyncChecks.push({ arg, path, kind, check: asyncCheck });
      } catch (error) {
        report(at, `\`${kind}\`: ${(error as Error).message}`);
      }
    }
  }
  const detectors = decl.detect
    ? mergeDetectors(
        state.detectors,
        compileDetectors(decl.detect, (det, path, message, help) =>
          report(["detect", det, ...path], message, help),
        ),
      )
    : activeDetectors(state.detectors);
  return {
    name,
    produces: decl.produces ?? [],
    fields: Object.entries(decl.fields ?? {})
      .map(([path, labels]) => ({ path: path.split("."), labels }))
      // Most specific first: longer paths, then fewer wildcards.
      .sort((a, b) => b.path.length - a.path.length || wildcards(a.path) - wildcards(b.path)),
    propagates: decl.propagates ?? false,
    declassifies: decl.declassifies ?? [],
    sink: decl.sink,
    risk: decl.risk,
    cost: decl.cost,
    onViolation: decl.on_violation ?? "deny",
    enforce: decl.enforce !== false,
    checks,
    required,
    asyncChecks,
    detectors,
  };
}

function wildcards(path: readonly string[]): number {
  return path.filter((segment) => segment === "*").length;
}
