import { posix } from "node:path";
import { ToolwardenError } from "../core/index.js";
import type { Call, Finding } from "../core/index.js";
import { compileGlobs } from "../policy/glob.js";
import type { GlobMatcher } from "../policy/glob.js";

/** `warden.scope(spec, fn)`: what one block of work may touch. */
export interface ScopeSpec {
  /** The block's task: the judge reviews its calls against it (instead of the session's). */
  task?: string;
  /** Tool-name globs; a call to any other tool is denied (`scope.tool`). */
  tools?: readonly string[];
  /**
   * Argument globs: `{ path: "/tmp/**", url: ["https://api.example.com/*"] }`. When the call has
   * the argument (a dotted path), its value (each element of an array) must match (`scope.resource`).
   * Absolute paths are normalised first, so `/tmp/../etc` does not pass as `/tmp/*`.
   */
  resources?: Readonly<Record<string, string | readonly string[]>>;
}

/** A scope compiled once when the block starts. */
export interface CompiledScope {
  task?: string;
  tools?: GlobMatcher;
  toolList?: readonly string[];
  resources: Array<{ arg: string; path: string[]; match: GlobMatcher; globs: readonly string[] }>;
}

/** Compiles a scope; throws `ToolwardenError("scope_invalid")` for a bad glob or shape. */
export function compileScope(spec: ScopeSpec): CompiledScope {
  if (!spec || typeof spec !== "object")
    throw new ToolwardenError("scope_invalid", "a scope is an object `{ task?, tools?, resources? }`");
  try {
    const tools = spec.tools === undefined ? undefined : compileGlobs([...spec.tools]);
    const resources = Object.entries(spec.resources ?? {}).map(([arg, globs]) => {
      const list = typeof globs === "string" ? [globs] : [...globs];
      if (list.length === 0) throw new Error(`\`resources.${arg}\` needs at least one glob`);
      return { arg, path: arg.split("."), match: compileGlobs(list), globs: list };
    });
    return { task: spec.task, tools, toolList: spec.tools, resources };
  } catch (error) {
    throw new ToolwardenError("scope_invalid", `bad scope: ${(error as Error).message}`);
  }
}

/** The first way the call leaves the scope, or undefined when it stays inside. */
export function checkScope(scope: CompiledScope, call: Call): Finding | undefined {
  if (scope.tools && !scope.tools(call.tool)) {
    return {
      code: "scope.tool",
      message: `\`${call.tool}\` is outside this scope's tools (${scope.toolList?.join(", ")})`,
      verdict: "deny",
    };
  }
  for (const resource of scope.resources) {
    const value = valueAt(call.args, resource.path);
    if (value === undefined) continue;
    const values = Array.isArray(value) ? value : [value];
    for (const item of values) {
      if (typeof item !== "string" || !resource.match(normalise(item))) {
        return {
          code: "scope.resource",
          message: `\`${resource.arg}\` = ${JSON.stringify(item)} is outside this scope's resources (${resource.globs.join(", ")})`,
          arg: resource.arg,
          verdict: "deny",
        };
      }
    }
  }
  return undefined;
}

function normalise(value: string): string {
  return value.startsWith("/") ? posix.normalize(value) : value;
}

function valueAt(args: Record<string, unknown> | undefined, path: readonly string[]): unknown {
  let value: unknown = args;
  for (const key of path) {
    if (value === null || typeof value !== "object" || !Object.hasOwn(value, key)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}
