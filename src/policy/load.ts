import { createHash } from "node:crypto";
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { PolicyLoadError } from "../core/index.js";
import type { PolicyIssue } from "../core/index.js";
import {
  budgetSchema,
  limitSchema,
  policyKeys,
  policySchema,
  ruleSchema,
  testSchema,
  toolSchema,
} from "./schema.js";
import type { RawPolicy } from "./schema.js";
import { POLICY_ENGINES } from "./engines.js";
import { issueAt, issueAtPath, parseSource, schemaIssues } from "./source.js";
import type { PathSegment, PolicySource } from "./source.js";

/** Where a piece of the merged policy was written, so compile errors can point at it. */
export interface Origin {
  source: PolicySource;
  path: PathSegment[];
}

/** A validated policy with `extends` merged in, and the origin of every part. */
export interface LoadedPolicy {
  policy: RawPolicy;
  /** The root file (the one that was loaded). */
  source: PolicySource;
  sources: PolicySource[];
  origins: {
    rules: Origin[];
    limits: Origin[];
    tests: Origin[];
    tools: Map<string, Origin>;
    shorthand: Map<string, Origin[]>;
    detect: Map<string, Origin>;
  };
  /** SHA-256 over the texts of every file, root first. */
  hash: string;
  /**
   * Problems found while loading that did not stop it (the invalid parts were set aside), so the
   * compiler can report its own problems with them in one run. A policy with any never loads:
   * `compilePolicy` throws them all.
   */
  issues?: PolicyIssue[];
}

/** How the loader treats problems it can step past: throw them (default) or hand them on in `issues`. */
export interface LoadOptions {
  /** Keep going past invalid parts and return their problems in `issues` (the compiler does). */
  collect?: boolean;
  /**
   * Finds what an `extends` entry names: its file name (as errors show it, and for cycle checks)
   * and text. Throw an `Error` to refuse it; its message becomes the issue at the entry. Default:
   * a path relative to the extending file, read with {@link readPolicyFile}. A server gives
   * uploads one that finds only the policies it has stored.
   */
  resolveExtends?: (ref: string, from: string) => { file: string; text: string };
}

/** Largest policy file read (8 MiB). */
export const MAX_POLICY_BYTES = 8 * 1024 * 1024;

/**
 * Reads a policy file: only a regular file (never a device, FIFO or directory, which could block
 * or never end), at most {@link MAX_POLICY_BYTES}. Throws an `Error` saying why not.
 */
export function readPolicyFile(file: string): string {
  // Non-blocking open: opening a FIFO for reading would otherwise wait for a writer.
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new Error("not a regular file");
    if (stat.size > MAX_POLICY_BYTES) throw new Error(`larger than ${MAX_POLICY_BYTES} bytes`);
    const buffer = Buffer.alloc(stat.size + 1);
    let length = 0;
    for (;;) {
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
      if (length > stat.size) throw new Error(`larger than ${MAX_POLICY_BYTES} bytes`);
    }
    return buffer.toString("utf8", 0, length);
  } finally {
    closeSync(fd);
  }
}

/** How `extends` resolves by default: a path relative to the extending file, read with {@link readPolicyFile}. */
export function defaultExtends(ref: string, from: string): { file: string; text: string } {
  const file = resolve(folderOf(from), ref);
  try {
    return { file, text: readPolicyFile(file) };
  } catch (error) {
    const reason =
      (error as NodeJS.ErrnoException).code === "ENOENT" ? "file not found" : (error as Error).message;
    throw new Error(`cannot read \`${file}\`: ${reason}`);
  }
}

/** Reads and validates a policy file and everything it extends. Throws `PolicyLoadError`. */
export function loadPolicyFile(file: string, options: LoadOptions = {}): LoadedPolicy {
  return new Loader(options).load(resolve(file), undefined);
}

/**
 * Validates policy text; `extends` resolves relative to `file`'s folder (the working directory
 * without one). Errors name `file`, or `<policy text>`. Throws `PolicyLoadError`.
 */
export function loadPolicyText(text: string, file?: string, options: LoadOptions = {}): LoadedPolicy {
  return new Loader(options).load(file === undefined ? "<policy text>" : pathOf(file), text);
}

/** Validates a policy given as an object (no source positions beyond line 1). */
export function loadPolicyObject(
  policy: unknown,
  file = "<object>",
  options: LoadOptions = {},
): LoadedPolicy {
  return loadPolicyText(JSON.stringify(policy, null, 1), file, options);
}

/** A file name as errors show it: resolved, unless it is a label such as `<object>`. */
function pathOf(file: string): string {
  return /^<[^>]*>$/.test(file) ? file : resolve(file);
}

/** The folder `extends` paths are relative to; a label (`<policy text>`) has none, so the working directory. */
function folderOf(file: string): string {
  return /^<[^>]*>$/.test(file) ? process.cwd() : dirname(file);
}

/** The keys of each level, for "did you mean" (the top level read per load: engines register late). */
const levelKeys = (): Array<[RegExp, readonly string[]]> => [
  [/^$/, policyKeys()],
  [/^tools\/[^/]+$/, Object.keys(toolSchema.shape)],
  [/^rules\/\d+$/, Object.keys(ruleSchema.shape)],
  [/^limits\/\d+$/, Object.keys(limitSchema.shape)],
  [/^budget$/, Object.keys(budgetSchema.shape)],
  [/^tests\/\d+$/, Object.keys(testSchema.shape)],
];

class Loader {
  private readonly stack: string[] = [];
  private readonly sources: PolicySource[] = [];
  /** Problems stepped past (invalid parts set aside), reported with the rest. */
  private readonly issues: PolicyIssue[] = [];

  constructor(private readonly options: LoadOptions = {}) {}

  load(file: string, text: string | undefined): LoadedPolicy {
    const own = this.loadOne(file, text, undefined);
    if (this.issues.length && !this.options.collect) throw new PolicyLoadError(sortIssues(this.issues));
    return {
      ...own,
      sources: this.sources,
      hash: hashSources(this.sources),
      ...(this.issues.length ? { issues: this.issues } : {}),
    };
  }

  private loadOne(
    file: string,
    text: string | undefined,
    from: Origin | undefined,
  ): Omit<LoadedPolicy, "sources" | "hash"> {
    if (this.stack.includes(file)) {
      const cycle = [...this.stack.slice(this.stack.indexOf(file)), file].join(" -> ");
      throw new PolicyLoadError([
        from
          ? issueAtPath(from.source, from.path, `extends cycle: ${cycle}`)
          : { file, line: 1, col: 1, message: `extends cycle: ${cycle}` },
      ]);
    }
    if (text === undefined) {
      try {
        text = readPolicyFile(file);
      } catch (error) {
        const reason =
          (error as NodeJS.ErrnoException).code === "ENOENT" ? "file not found" : (error as Error).message;
        const issue = from
          ? issueAtPath(from.source, from.path, `cannot read \`${file}\`: ${reason}`)
          : { file, line: 1, col: 1, message: `cannot read policy: ${reason}` };
        throw new PolicyLoadError([issue]);
      }
    }
    const { source, issues } = parseSource(file, text);
    if (issues.length) throw new PolicyLoadError(issues);
    this.sources.push(source);
    const policy = validate(source, this.issues);
    this.stack.push(file);
    try {
      const bases = (typeof policy.extends === "string" ? [policy.extends] : (policy.extends ?? [])).map(
        (ref, i) => {
          const at: Origin = {
            source,
            path: typeof policy.extends === "string" ? ["extends"] : ["extends", i],
          };
          let found: { file: string; text: string };
          try {
            found = (this.options.resolveExtends ?? defaultExtends)(ref, file);
          } catch (error) {
            if (error instanceof PolicyLoadError) throw error;
            throw new PolicyLoadError([issueAtPath(source, at.path, (error as Error).message)]);
          }
          return this.loadOne(found.file, found.text, at);
        },
      );
      return merge(source, policy, bases, this.issues);
    } finally {
      this.stack.pop();
    }
  }
}

/**
 * Checks a document against the schema. On failure its problems go to `issues` and the invalid
 * parts are repaired with stand-ins (an unknown key dropped, a bad verdict read as `deny`, a
 * broken rule replaced) so the rest can still be checked; the stand-ins never load, since the
 * problems are thrown with everything else. A document that cannot be repaired throws at once.
 */
function validate(source: PolicySource, collected: PolicyIssue[]): RawPolicy {
  let value: unknown;
  try {
    value = source.doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    // An alias before its anchor, or an alias bomb past maxAliasCount.
    throw new PolicyLoadError([
      issueAt(source, 0, `invalid YAML: ${(error as Error).message.split("\n")[0]}`),
    ]);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new PolicyLoadError([issueAt(source, 0, "a policy is a mapping with at least `version: 1`")]);
  }
  const unsafe: PolicyIssue[] = [];
  unsafeKeys(source, value, [], unsafe);
  if (unsafe.length) throw new PolicyLoadError(unsafe);
  const schema = policySchema();
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = schemaIssues(source, result.error.issues, levelKeys());
  let repaired: unknown = structuredClone(value);
  let problems = result.error.issues;
  for (let round = 0; round < 4; round++) {
    for (const problem of problems) repair(repaired, problem);
    const again = schema.safeParse(repaired);
    if (again.success) {
      collected.push(...issues);
      return again.data;
    }
    problems = again.error.issues;
    repaired = structuredClone(repaired);
  }
  throw new PolicyLoadError(issues);
}

/** Stand-ins for required values, by key, so a repaired element still parses. */
const STAND_INS: Record<string, unknown> = {
  version: 1,
  verdict: "deny",
  expect: "deny",
  tool: "invalid",
  call: { tool: "invalid" },
};

/** Sets one schema problem aside in `root` (see `validate`). */
function repair(root: unknown, problem: { code: string; path: PropertyKey[]; keys?: string[] }): void {
  const path = problem.path.filter((p): p is string | number => typeof p !== "symbol");
  const at = (depth: number) => {
    let node = root as Record<string | number, unknown> | undefined;
    for (const segment of path.slice(0, depth))
      node = node?.[segment] as Record<string | number, unknown> | undefined;
    return node !== null && typeof node === "object" ? node : undefined;
  };
  if (problem.code === "unrecognized_keys") {
    const node = at(path.length);
    for (const key of problem.keys ?? []) if (node) delete node[key];
    return;
  }
  if (path.length === 0) return;
  const parent = at(path.length - 1);
  if (!parent) return;
  const key = path[path.length - 1];
  if (Array.isArray(parent)) {
    // A whole list element is wrong (a limit with both `rate` and `max`): a stand-in of its kind.
    const list = path[path.length - 2];
    const name = `invalid ${String(list)} ${String(key)}`;
    parent[key as number] =
      list === "rules"
        ? { name, verdict: "deny" }
        : list === "limits"
          ? { name, max: 1 }
          : list === "tests"
            ? { call: { tool: "invalid" }, expect: "deny" }
            : "invalid";
    return;
  }
  if (typeof key === "string" && key in STAND_INS) parent[key] = structuredClone(STAND_INS[key]);
  else if (key === "name") parent[key] = `invalid ${path.join(".")}`;
  else delete parent[key];
}

function sortIssues(issues: PolicyIssue[]): PolicyIssue[] {
  return issues.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col);
}

/**
 * What the schema cannot be trusted with: `__proto__` keys (its records drop them, so a
 * constraint, declaration or condition under one would silently vanish and the policy would
 * mean less than it says) and recursive aliases (`&a [*a]` makes a cyclic value).
 */
function unsafeKeys(
  source: PolicySource,
  value: unknown,
  path: PathSegment[],
  issues: PolicyIssue[],
  open = new Set<object>(),
): void {
  if (value === null || typeof value !== "object") return;
  if (open.has(value)) {
    issues.push(issueAtPath(source, path, "a recursive alias is not allowed in a policy"));
    return;
  }
  open.add(value);
  const entries: Array<[PathSegment, unknown]> = Array.isArray(value)
    ? [...value.entries()]
    : Object.entries(value);
  for (const [key, child] of entries) {
    if (key === "__proto__")
      issues.push(
        issueAtPath(source, [...path, key], "`__proto__` cannot be used as a key", { atKey: true }),
      );
    unsafeKeys(source, child, [...path, key], issues, open);
  }
  open.delete(value);
}

type Merged = Omit<LoadedPolicy, "sources" | "hash">;

/** Rules, limits and shorthand lists concatenate; declarations merge; a conflicting declaration is an error. */
function merge(source: PolicySource, own: RawPolicy, bases: Merged[], issues: PolicyIssue[]): Merged {
  const policy: RawPolicy = { ...own, extends: undefined };
  const origins: Merged["origins"] = {
    rules: [],
    limits: [],
    tests: (own.tests ?? []).map((_, i) => ({ source, path: ["tests", i] })),
    tools: new Map(),
    shorthand: new Map(),
    detect: new Map(),
  };
  const layers: Array<{ policy: RawPolicy; origins?: Merged["origins"]; source: PolicySource }> = [
    ...bases.map((base) => ({ policy: base.policy, origins: base.origins, source: base.source })),
    { policy: own, source },
  ];
  policy.rules = [];
  policy.limits = [];
  policy.tools = {};
  for (const verdict of ["allow", "flag", "ask", "deny"] as const) policy[verdict] = [];
  for (const layer of layers) {
    const { policy: p } = layer;
    for (const [i, rule] of (p.rules ?? []).entries()) {
      policy.rules.push(rule);
      origins.rules.push(layer.origins?.rules[i] ?? { source: layer.source, path: ["rules", i] });
    }
    for (const [i, limit] of (p.limits ?? []).entries()) {
      policy.limits.push(limit);
      origins.limits.push(layer.origins?.limits[i] ?? { source: layer.source, path: ["limits", i] });
    }
    for (const verdict of ["allow", "flag", "ask", "deny"] as const) {
      const globs = p[verdict] ?? [];
      if (!globs.length) continue;
      policy[verdict]!.push(...globs);
      const list = origins.shorthand.get(verdict) ?? [];
      for (let i = 0; i < globs.length; i++) {
        list.push(layer.origins?.shorthand.get(verdict)?.[i] ?? { source: layer.source, path: [verdict, i] });
      }
      origins.shorthand.set(verdict, list);
    }
    for (const [name, tool] of Object.entries(p.tools ?? {})) {
      const origin = layer.origins?.tools.get(name) ?? { source: layer.source, path: ["tools", name] };
      const prior = origins.tools.get(name);
      if (prior && JSON.stringify(policy.tools?.[name]) !== JSON.stringify(tool)) {
        issues.push(conflict(origin, `tool \`${name}\``, prior));
        continue;
      }
      policy.tools[name] = tool;
      origins.tools.set(name, origin);
    }
    for (const key of ["detect", "labels", "servers"] as const) {
      for (const [name, value] of Object.entries(p[key] ?? {})) {
        const merged = (policy[key] ?? {}) as Record<string, unknown>;
        const origin = { source: layer.source, path: [key, name] };
        if (name in merged && JSON.stringify(merged[name]) !== JSON.stringify(value)) {
          issues.push(conflict(origin, `\`${key}.${name}\``));
          continue;
        }
        policy[key] = { ...merged, [name]: value } as never;
        if (key === "detect") origins.detect.set(name, origin);
      }
    }
    // Whole keys: the root's own wins, else the last base that has it (engines' keys too).
    for (const key of ["name", "default", "fail", "budget", "audit", ...engineKeys()]) {
      const mine = (own as Record<string, unknown>)[key];
      const theirs = (p as Record<string, unknown>)[key];
      if (layer.policy !== own && theirs !== undefined && mine === undefined)
        (policy as Record<string, unknown>)[key] = theirs;
    }
  }
  const names = new Map<string, number>();
  policy.rules.forEach((rule, i) => {
    const first = names.get(rule.name);
    if (first !== undefined) {
      issues.push(conflict(origins.rules[i], `rule name \`${rule.name}\``, origins.rules[first]));
    } else names.set(rule.name, i);
  });
  return { policy, source, origins };
}

/** The top-level keys the registered engines own (`judge`, `engine`). */
function engineKeys(): string[] {
  return [...new Set([...POLICY_ENGINES.keys()].map((key) => key.split(".")[0]))];
}

function conflict(origin: Origin, what: string, prior?: Origin): PolicyIssue {
  const where = prior ? ` (also at ${prior.source.file}:${positionText(prior)})` : "";
  return issueAtPath(origin.source, origin.path, `${what} conflicts with an earlier declaration${where}`, {
    atKey: true,
  });
}

function positionText(origin: Origin): string {
  const issue = issueAtPath(origin.source, origin.path, "", { atKey: true });
  return `${issue.line}:${issue.col}`;
}

function hashSources(sources: PolicySource[]): string {
  const hash = createHash("sha256");
  for (const source of sources) hash.update(source.file).update("\0").update(source.text).update("\0");
  return hash.digest("hex");
}
