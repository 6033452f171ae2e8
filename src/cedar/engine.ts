import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, resolve } from "node:path";
import type * as CedarWasm from "@cedar-policy/cedar-wasm/nodejs";
import type { PolicyIssue, Verdict } from "../core/index.js";
import { missingPackageError } from "../core/optional.js";
import type { EngineCheck, PolicyEngine } from "../policy/engines.js";
import { cedarSchema } from "./schema.js";
import type { RawCedar } from "./schema.js";

/** A compiled Cedar policy set, checked once per call. */
export type CedarCheck = EngineCheck;

/** `engine: { cedar }`, registered with the policy compiler where the library is assembled. */
export const cedarEngine: PolicyEngine<RawCedar> = {
  key: "engine.cedar",
  schema: cedarSchema,
  compile: (raw, site) => {
    const { check, issues } = compileCedar(raw, site.baseDir, site.failOpen, (key, message) =>
      site.issue([key], message),
    );
    return { check, issues };
  },
};

export interface CedarSpec {
  /** Path of the `.cedar` policies (relative paths resolve against `baseDir`). */
  policies: string;
  /** Optional `.cedarschema`: the policies are validated against it at load (strict mode). */
  schema?: string;
}

interface CedarPolicy {
  id: string;
  effect: "permit" | "forbid";
  /** `file:line:col` of the policy, for reasons. */
  at: string;
}

let wasm: typeof CedarWasm | undefined;

/** The official Cedar engine (WebAssembly, synchronous API), loaded on first use: it costs ~200 ms. */
function cedar(): typeof CedarWasm {
  try {
    wasm ??= createRequire(import.meta.url)("@cedar-policy/cedar-wasm/nodejs") as typeof CedarWasm;
  } catch (error) {
    throw missingPackageError(error, "@cedar-policy/cedar-wasm", "`engine: { cedar }`");
  }
  return wasm;
}

/**
 * Reads, parses and (with a schema) validates a Cedar policy set, and returns the check the
 * engine runs per call. Problems come back as issues naming the `.cedar`/`.cedarschema` file,
 * line and column; `at(key, message)` places read errors at the policy's own `engine.cedar` key.
 *
 * Per call: principal `Agent::"<agent id>"` (attributes: the agent's other attributes), action
 * `Action::"<tool>"`, resource `Server::"<server>"` (`Server::"local"` without one), context
 * `{ tool, args, labels, seen }` (labels that flowed into the arguments, labels the session saw).
 * A satisfied forbid contributes deny, a satisfied permit allow, neither nothing. A forbid that
 * fails to evaluate contributes deny (fail-closed; `flag` under `fail: open`): Cedar itself would
 * skip it, which would let the call through.
 */
export function compileCedar(
  spec: CedarSpec,
  baseDir: string,
  failOpen: boolean,
  at: (key: "policies" | "schema", message: string) => PolicyIssue,
): { check?: CedarCheck; issues: PolicyIssue[] } {
  const policies = readSource(resolve(baseDir, spec.policies));
  if (typeof policies === "string") return { issues: [at("policies", policies)] };
  const schema = spec.schema === undefined ? undefined : readSource(resolve(baseDir, spec.schema));
  if (typeof schema === "string") return { issues: [at("schema", schema)] };

  const engine = cedar();
  const issues: PolicyIssue[] = [];
  const parsed = engine.checkParsePolicySet({ staticPolicies: policies.text });
  if (parsed.type === "failure") return { issues: parsed.errors.map((e) => issueIn(policies, e)) };
  if (schema) {
    const schemaParsed = engine.checkParseSchema(schema.text);
    if (schemaParsed.type === "failure")
      return { issues: schemaParsed.errors.map((e) => issueIn(schema, e)) };
    const validated = engine.validate({
      schema: schema.text,
      policies: { staticPolicies: policies.text },
      validationSettings: { mode: "strict" },
    });
    if (validated.type === "failure") return { issues: validated.errors.map((e) => issueIn(policies, e)) };
    for (const { error } of validated.validationErrors) issues.push(issueIn(policies, error));
    if (issues.length) return { issues: dedupe(issues) };
  }

  const split = engine.policySetTextToParts(policies.text);
  if (split.type === "failure") return { issues: split.errors.map((e) => issueIn(policies, e)) };
  if (split.policy_templates.length) {
    return {
      issues: [
        issueAt(
          policies,
          policies.text.indexOf(split.policy_templates[0]),
          "cedar templates are not supported; write static policies",
        ),
      ],
    };
  }
  const byId = new Map<string, CedarPolicy>();
  const staticPolicies: Record<string, string> = {};
  let cursor = 0;
  split.policies.forEach((text, i) => {
    const json = engine.policyToJson(text);
    const offset = policies.text.indexOf(text, cursor);
    if (offset >= 0) cursor = offset + text.length;
    const position = issueAt(policies, Math.max(0, offset), "");
    const annotated = json.type === "success" ? json.json.annotations?.id : undefined;
    let id = annotated || `policy${i}`;
    if (byId.has(id)) id = `${id}#${i}`;
    byId.set(id, {
      id,
      effect: json.type === "success" ? json.json.effect : text.includes("forbid") ? "forbid" : "permit",
      at: `${basename(position.file)}:${position.line}:${position.col}`,
    });
    staticPolicies[id] = text;
  });
  const setId = `toolwarden:${createHash("sha256").update(policies.text).digest("hex")}`;
  const preparsed = engine.preparsePolicySet(setId, { staticPolicies });
  if (preparsed.type === "failure") return { issues: preparsed.errors.map((e) => issueIn(policies, e)) };

  const errVerdict: Verdict = failOpen ? "flag" : "deny";
  const wantsLabels = /\bcontext\s*\.\s*labels\b|\bcontext\s*\[\s*"labels"/.test(policies.text);
  const check: CedarCheck = (ctx, contribute) => {
    const agent = ctx.agent;
    const principal = { type: "Agent", id: typeof agent.id === "string" ? agent.id : "anonymous" };
    const attrs: Record<string, CedarWasm.CedarValueJson> = {};
    for (const key in agent) {
      if (key === "id" || !Object.hasOwn(agent, key)) continue;
      const value = toCedar(agent[key], 0);
      if (value !== undefined && !ESCAPES.has(key)) attrs[key] = value;
    }
    const answer = engine.statefulIsAuthorized({
      principal,
      action: { type: "Action", id: ctx.tool },
      resource: { type: "Server", id: ctx.server ?? "local" },
      context: {
        tool: ctx.tool,
        args: toCedar(ctx.args, 0) ?? {},
        labels: wantsLabels ? [...new Set(ctx.flows().map((hit) => hit.label))] : [],
        seen: [...ctx.seen],
      },
      preparsedPolicySetId: setId,
      entities: [{ uid: principal, attrs, parents: [] }],
    });
    if (answer.type === "failure") {
      contribute(
        errVerdict,
        "cedar.error",
        `Cedar could not decide: ${answer.errors[0]?.message ?? "unknown error"}`,
      );
      return;
    }
    const { decision, diagnostics } = answer.response;
    for (const id of diagnostics.reason) {
      const policy = byId.get(id);
      const where = policy ? ` (${policy.at})` : "";
      if (decision === "allow")
        contribute("allow", `cedar:${id}`, `Cedar policy \`${id}\`${where} permits the call`);
      else contribute("deny", `cedar:${id}`, `Cedar policy \`${id}\`${where} forbids the call`);
    }
    for (const { policyId, error } of diagnostics.errors) {
      const policy = byId.get(policyId);
      if (policy?.effect !== "forbid") continue;
      contribute(
        errVerdict,
        `cedar:${policyId}`,
        `Cedar forbid \`${policyId}\` (${policy.at}) failed to evaluate (${error.message}); fail-closed`,
      );
    }
  };
  return { check, issues: [] };
}

/** Keys that Cedar's JSON format reads as entity or extension escapes: never taken from call data. */
const ESCAPES = new Set(["__entity", "__extn", "__expr"]);
const DECIMAL = /^-?\d{1,15}(\.\d{1,4})?$/;

/**
 * A JSON value as a Cedar value: strings and booleans as they are, safe integers as Longs,
 * other numbers as `decimal` when Cedar can hold them (else as strings), arrays as sets, objects
 * as records; null and escape keys are dropped.
 */
export function toCedar(value: unknown, depth: number): CedarWasm.CedarValueJson | undefined {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      if (Number.isSafeInteger(value)) return value;
      if (!Number.isFinite(value)) return undefined;
      return DECIMAL.test(String(value)) ? { __extn: { fn: "decimal", arg: String(value) } } : String(value);
    case "object": {
      if (value === null || depth > 32) return undefined;
      if (Array.isArray(value)) {
        const out: CedarWasm.CedarValueJson[] = [];
        for (const item of value) {
          const converted = toCedar(item, depth + 1);
          if (converted !== undefined) out.push(converted);
        }
        return out;
      }
      const out: Record<string, CedarWasm.CedarValueJson> = {};
      for (const key in value) {
        if (!Object.hasOwn(value, key) || ESCAPES.has(key)) continue;
        const converted = toCedar((value as Record<string, unknown>)[key], depth + 1);
        if (converted !== undefined) out[key] = converted;
      }
      return out;
    }
    default:
      return undefined;
  }
}

interface CedarSource {
  file: string;
  text: string;
  bytes: Buffer;
}

function readSource(file: string): CedarSource | string {
  try {
    const text = readFileSync(file, "utf8");
    return { file, text, bytes: Buffer.from(text, "utf8") };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return `cannot read \`${file}\`: ${code === "ENOENT" ? "file not found" : (error as Error).message}`;
  }
}

/** A Cedar error as a policy issue at its first source location (Cedar counts bytes). */
function issueIn(source: CedarSource, error: CedarWasm.DetailedError): PolicyIssue {
  const location = error.sourceLocations?.[0];
  const offset = location ? source.bytes.subarray(0, location.start).toString("utf8").length : 0;
  const label = location?.label ? ` (${location.label})` : "";
  const message = `cedar: ${lowerFirst(error.message)}${label}`;
  const issue = issueAt(source, offset, message);
  return error.help ? { ...issue, help: error.help } : issue;
}

/** An issue at a character offset, with a one-line code frame like the policy loader's. */
function issueAt(source: CedarSource, offset: number, message: string): PolicyIssue {
  const before = source.text.slice(0, Math.max(0, offset));
  const line = before.split("\n").length;
  const col = offset - (before.lastIndexOf("\n") + 1) + 1;
  const text = source.text.split("\n")[line - 1] ?? "";
  const frame = `${String(line).padStart(4)} | ${text}\n     | ${" ".repeat(Math.max(0, col - 1))}^`;
  return { file: source.file, line, col, message, frame };
}

function dedupe(issues: PolicyIssue[]): PolicyIssue[] {
  const seen = new Set<string>();
  return issues.filter((issue) => {
    const key = `${issue.line}:${issue.col}:${issue.message.replace(/ for Action::"[^"]*"/, "")}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function lowerFirst(text: string): string {
  return text.length && /[A-Z][a-z]/.test(text.slice(0, 2)) ? text[0].toLowerCase() + text.slice(1) : text;
}
