import type { Call, Decision } from "../core/index.js";
import { evaluateCall } from "../gateway/index.js";
import type { CompiledLimit, CompiledPolicy, Origin } from "../policy/index.js";
import type { PathSegment } from "../policy/source.js";
import { issueAtPath } from "../policy/source.js";

/** One part of a policy a test can exercise: a rule (or shorthand entry), a tool constraint, a limit. */
export interface CoverageItem {
  kind: "rule" | "constraint" | "limit";
  /** `big-refunds`, `allow:read_*`, `tools.web_fetch.args.url (url)`, `fetch-rate`. */
  name: string;
  file: string;
  line: number;
  col: number;
  covered: boolean;
}

/** Coverage of one policy file (a policy and the files it extends are reported file by file). */
export interface FileCoverage {
  file: string;
  items: CoverageItem[];
  covered: number;
  total: number;
  /** 0..100; 100 when the file has nothing to cover. */
  percent: number;
}

/**
 * Which rules, tool constraints and limits the policy's tests exercised, as `opa test --coverage`
 * does for Rego: a rule is covered when it matched a test's call (it decided, or is listed in
 * `matched` or `observed`); a constraint when a test called its tool with that argument (so the
 * analyzer ran); a limit when a test's call counts in it. Steps before a test's call do not count.
 */
export function policyCoverage(
  policy: CompiledPolicy,
  outcomes: ReadonlyArray<{ call: Call; got: Decision }>,
): FileCoverage[] {
  const rules = new Set<string>();
  const constraints = new Set<string>();
  const limits = new Set<string>();
  for (const { got, call } of outcomes) {
    for (const name of [got.rule, ...(got.matched ?? []), ...(got.observed ?? [])]) if (name) rules.add(name);
    const decl = policy.tools.get(call.tool);
    for (const check of decl?.checks ?? [])
      if (reaches(call.args, check.path)) constraints.add(constraintName(call.tool, check.arg, check.kind));
    const applied: CompiledLimit[] = [];
    evaluateCall(policy, withoutSession(call), undefined, applied);
    for (const limit of applied) limits.add(limit.name);
  }

  const { origins, policy: raw } = policy.loaded;
  const items: CoverageItem[] = [];
  const at = (origin: Origin | undefined, extra: PathSegment[] = []) => {
    const issue = issueAtPath(
      (origin ?? { source: policy.loaded.source }).source,
      [...(origin?.path ?? []), ...extra],
      "",
      { atKey: true },
    );
    return { file: issue.file, line: issue.line, col: issue.col };
  };
  for (const verdict of ["allow", "flag", "ask", "deny"] as const) {
    (raw[verdict] ?? []).forEach((glob, i) => {
      const name = `${verdict}:${glob}`;
      items.push({
        kind: "rule",
        name,
        ...at(origins.shorthand.get(verdict)?.[i]),
        covered: rules.has(name),
      });
    });
  }
  (raw.rules ?? []).forEach((rule, i) => {
    items.push({ kind: "rule", name: rule.name, ...at(origins.rules[i]), covered: rules.has(rule.name) });
  });
  for (const [tool, decl] of Object.entries(raw.tools ?? {})) {
    for (const [arg, spec] of Object.entries(decl.args ?? {})) {
      for (const kind of Object.keys((spec ?? {}) as Record<string, unknown>)) {
        if (kind === "required") continue;
        const name = constraintName(tool, arg, kind);
        items.push({
          kind: "constraint",
          name,
          ...at(origins.tools.get(tool), ["args", arg, kind]),
          covered: constraints.has(name),
        });
      }
    }
  }
  (raw.limits ?? []).forEach((limit, i) => {
    items.push({
      kind: "limit",
      name: limit.name,
      ...at(origins.limits[i]),
      covered: limits.has(limit.name),
    });
  });

  const byFile = new Map<string, CoverageItem[]>();
  for (const item of items) byFile.set(item.file, [...(byFile.get(item.file) ?? []), item]);
  return [...byFile].map(([file, list]) => {
    list.sort((a, b) => a.line - b.line || a.col - b.col);
    const covered = list.filter((item) => item.covered).length;
    return {
      file,
      items: list,
      covered,
      total: list.length,
      percent: list.length ? (100 * covered) / list.length : 100,
    };
  });
}

function constraintName(tool: string, arg: string, kind: string): string {
  return `tools.${tool}.args.${arg} (${kind})`;
}

function withoutSession(call: Call): Call {
  const { session: _session, ...rest } = call;
  return rest;
}

/** Whether the arguments hold a value at the path (through lists, as constraints read them). */
function reaches(value: unknown, path: readonly string[], i = 0): boolean {
  if (i === path.length) return value !== undefined;
  if (Array.isArray(value)) {
    const next = path[i] === "*" ? i + 1 : i;
    return value.some((element) => reaches(element, path, next));
  }
  if (value === null || typeof value !== "object" || !Object.hasOwn(value, path[i])) return false;
  return reaches((value as Record<string, unknown>)[path[i]], path, i + 1);
}

/** Adds what another policy's tests covered in the same file. */
export function mergeCoverage(into: FileCoverage, other: FileCoverage): void {
  for (const item of other.items) {
    const same = into.items.find((i) => i.kind === item.kind && i.name === item.name && i.line === item.line);
    if (!same) into.items.push(item);
    else same.covered ||= item.covered;
  }
  into.total = into.items.length;
  into.covered = into.items.filter((i) => i.covered).length;
  into.percent = into.total ? (100 * into.covered) / into.total : 100;
}
