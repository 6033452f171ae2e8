import { z } from "zod";
import type { PolicyIssue, Verdict } from "../core/index.js";
import type { EvalContext } from "./context.js";
import type { PathSegment, PolicySource } from "./source.js";

/** How an engine adds its say to a decision: contributions like rules', ranked by the same rule. */
export type Contribute = (verdict: Verdict, rule: string, reason: string) => void;

/** An engine's check, run per call by `evaluate`. */
export type EngineCheck = (ctx: EvalContext, contribute: Contribute) => void;

/**
 * Fields engines set on the compiled policy. Empty here: an engine declares its own by
 * augmenting this interface from its folder (the judge adds `judge`), so `policy/` names no engine.
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled by declaration merging from the engines' folders.
export interface EngineFields {}

/** Where an engine's key was written, for paths and errors. */
export interface EngineSite {
  /** The file that declared the key (the root, or the base it came from). */
  source: PolicySource;
  /** The folder the engine's relative paths resolve against. */
  baseDir: string;
  /** `fail: open`: an engine's own error flags rather than denies. */
  failOpen: boolean;
  /** An issue at `path` under the engine's key (`engine.cedar.policies`), in `source`. */
  issue(path: PathSegment[], message: string): PolicyIssue;
}

/** What compiling an engine's key gives. */
export interface CompiledEngine {
  /** Asked per call; contributes like a rule. */
  check?: EngineCheck;
  /** Problems, thrown with the policy's others (a policy with any never loads). */
  issues?: PolicyIssue[];
  /** Fields it sets on the compiled policy (declared in {@link EngineFields}). */
  fields?: EngineFields;
}

/**
 * A part of a policy that an engine outside `policy/` owns (`engine: { cedar }`, `judge:`). The
 * engine registers; `policy/` checks the key with the engine's schema at load (so errors carry
 * file:line:col) and compiles it with the rest.
 */
export interface PolicyEngine<Raw = unknown> {
  /** The key it owns: a top-level key (`judge`) or one under `engine:` (`engine.cedar`). */
  key: string;
  /** Its options, checked at load. */
  schema: z.ZodType<Raw>;
  /** Runs once per compile when the policy has the key. */
  compile(raw: Raw, site: EngineSite): CompiledEngine;
}

const engines = new Map<string, PolicyEngine>();
let generation = 0;

/** The registered engines, by key, in registration order. */
export const POLICY_ENGINES: ReadonlyMap<string, PolicyEngine> = engines;

/** Registers an engine; registering the same one again is a no-op, another one for a taken key throws. */
export function registerEngine<Raw>(engine: PolicyEngine<Raw>): void {
  const known = engines.get(engine.key);
  if (known === engine) return;
  if (known) throw new Error(`two policy engines for the key \`${engine.key}\``);
  if (!/^(engine\.)?[a-z_]+$/.test(engine.key)) throw new Error(`bad policy engine key \`${engine.key}\``);
  engines.set(engine.key, engine as PolicyEngine);
  generation++;
}

let built: { generation: number; shape: Record<string, z.ZodType> } | undefined;

/**
 * The top-level policy keys the engines add, with their schemas: `judge`, and `engine` as a
 * strict mapping of the engines under it. Rebuilt only after a registration.
 */
export function engineShape(): Record<string, z.ZodType> {
  if (built?.generation === generation) return built.shape;
  const shape: Record<string, z.ZodType> = {};
  const under: Record<string, z.ZodType> = {};
  for (const engine of engines.values()) {
    const [top, sub] = engine.key.split(".");
    if (sub === undefined) shape[top] = engine.schema.optional();
    else under[sub] = engine.schema.optional();
  }
  if (Object.keys(under).length) shape.engine = z.object(under).strict().optional();
  built = { generation, shape };
  return shape;
}

/** The value a loaded policy holds at an engine's key, or undefined. */
export function engineValue(policy: object, key: string): unknown {
  let value: unknown = policy;
  for (const segment of key.split("."))
    value =
      value !== null && typeof value === "object" && Object.hasOwn(value, segment)
        ? (value as Record<string, unknown>)[segment]
        : undefined;
  return value;
}
