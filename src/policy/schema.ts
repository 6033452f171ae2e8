import { z } from "zod";
import { engineShape } from "./engines.js";

/** The raw shape of a policy document (version 1), checked before anything is compiled. */
const verdict = z.enum(["allow", "flag", "ask", "deny"]);
const risk = z.enum(["minimal", "low", "moderate", "high", "critical"]);
const globList = z.array(z.string());
/**
 * `detect.<detector>`: a verdict for arguments (`secrets: deny`), or the long form
 * `{ args: verdict, outputs: label | mask | deny, ...detector options }`; the long form scans
 * arguments only when it says `args`.
 */
export const detectEntry = z.union([
  verdict,
  z
    .object({ args: verdict.optional(), outputs: z.enum(["allow", "label", "mask", "deny"]).optional() })
    .catchall(z.unknown()),
]);
const detectMap = z.record(z.string(), detectEntry);
const labelList = z.array(z.string().min(1));

/** `args.<arg>: { <kind>: options, ... }`; kinds are checked against the analyzer registry. */
const argConstraints = z.record(z.string(), z.unknown());

export const toolSchema = z
  .object({
    description: z.string().optional(),
    produces: labelList.optional(),
    /** Labels for parts of an object output, by dotted path (`*` = any key or index); they replace `produces` there. */
    fields: z.record(z.string().min(1), labelList).optional(),
    /** The output also carries the labels that flowed into the call's arguments. */
    propagates: z.boolean().optional(),
    /** Labels the output never carries (declassification; audited). */
    declassifies: labelList.optional(),
    args: z.record(z.string(), argConstraints).optional(),
    sink: z.string().min(1).optional(),
    risk: risk.optional(),
    cost: z.number().nonnegative().optional(),
    on_violation: z.enum(["deny", "ask", "flag"]).optional(),
    detect: detectMap.optional(),
    /** `false`: every decision on this tool is computed and audited, but the call proceeds (observe). */
    enforce: z.boolean().optional(),
  })
  .strict();

/** `when` is checked by the condition compiler, which knows its open-ended keys (`args.*`, `agent.*`). */
const when = z.record(z.string(), z.unknown());

export const ruleSchema = z
  .object({
    name: z.string().min(1),
    when: when.optional(),
    /** `judge`: the policy's `judge:` reviewer decides; until it answers the rule ranks as `ask`. */
    verdict: z.union([verdict, z.literal("judge")]),
    message: z.string().optional(),
    /** `false`: the rule's verdict is audited, not enforced. */
    enforce: z.boolean().optional(),
  })
  .strict();

export const limitSchema = z
  .object({
    name: z.string().min(1),
    when: when.optional(),
    rate: z
      .string()
      .regex(
        /^\d+\s*\/\s*(\d+\s*)?(s|sec|second|m|min|minute|h|hour|d|day)s?$/,
        "expected a rate like `30/minute` or `100/5m`",
      )
      .optional(),
    max: z.number().int().positive().optional(),
    per: z.union([z.string(), z.array(z.string())]).optional(),
    verdict: z.enum(["deny", "ask", "flag"]).optional(),
    message: z.string().optional(),
    /** `false`: the limit counts as if enforced, but a tripped limit only is audited. */
    enforce: z.boolean().optional(),
  })
  .strict()
  .refine((limit) => (limit.rate === undefined) !== (limit.max === undefined), {
    message: "a limit needs exactly one of `rate` or `max`",
  });

export const budgetSchema = z
  .object({
    max: z.number().nonnegative(),
    ask_above: z.number().nonnegative().optional(),
    per: z.enum(["session", "agent", "global"]).optional(),
  })
  .strict();

/**
 * `servers.<id>`: an MCP upstream as the gateway sees it. `produces` labels every output of the
 * server; `tools.<name>.produces` labels one tool's; `pins` is the verdict for a tool that fails
 * its pinned fingerprint (changed, shadowing, look-alike, unapproved); `first_use: pin` trusts a
 * tool on first sight, `approve` waits for `toolwarden mcp pins approve`.
 */
export const serverSchema = z
  .object({
    produces: labelList.optional(),
    pins: z.enum(["deny", "ask"]).optional(),
    first_use: z.enum(["pin", "approve"]).optional(),
    /** Leave tools the policy denies outright out of `tools/list` (default: yes in the gateway, no in the proxy). */
    hide_denied: z.boolean().optional(),
    tools: z.record(z.string(), z.object({ produces: labelList.optional() }).strict()).optional(),
  })
  .passthrough();

const callSchema = z
  .object({
    tool: z.string(),
    args: z.record(z.string(), z.unknown()).optional(),
    server: z.string().optional(),
    agent: z.record(z.string(), z.unknown()).optional(),
    session: z.string().optional(),
    cost: z.number().optional(),
    labels: z.record(z.string(), labelList).optional(),
  })
  .strict();

const expectation = z.union([
  verdict,
  z
    .object({ verdict, rule: z.string().nullable().optional(), findings: z.array(z.string()).optional() })
    .strict(),
]);

export const testSchema = z
  .object({
    name: z.string().optional(),
    /** Earlier steps of the same session: their outputs are labelled before `call` is decided. */
    steps: z
      .array(
        z.union([
          /** A step without `result` is decided (and counted in limits) but labels nothing. */
          z
            .object({
              tool: z.string(),
              args: z.record(z.string(), z.unknown()).optional(),
              result: z.unknown().optional(),
            })
            .strict(),
          /** The user's own labelled input, as `session.input` records it. */
          z.object({ input: z.unknown(), labels: labelList }).strict(),
          /** What the user asked for (`session.task` in `expr`). */
          z.object({ task: z.string() }).strict(),
        ]),
      )
      .optional(),
    call: callSchema,
    expect: expectation,
  })
  .strict();

/** The keys every policy may have; the registered engines add theirs (see {@link policySchema}). */
const basePolicySchema = z
  .object({
    version: z.literal(1),
    name: z.string().optional(),
    description: z.string().optional(),
    default: verdict.optional(),
    /** `observe`: every decision is computed and audited in full, but no call is stopped. */
    mode: z.enum(["enforce", "observe"]).optional(),
    fail: z.enum(["closed", "open"]).optional(),
    extends: z.union([z.string(), z.array(z.string())]).optional(),
    allow: globList.optional(),
    flag: globList.optional(),
    ask: globList.optional(),
    deny: globList.optional(),
    tools: z.record(z.string(), toolSchema).optional(),
    detect: detectMap.optional(),
    labels: z
      .record(z.string(), z.object({ min_match: z.number().int().min(4).optional() }).strict())
      .optional(),
    // `verdict: judge` becomes `ask` plus `judge: true`, so code reading verdicts sees only the four.
    rules: z
      .array(
        ruleSchema.transform(({ verdict, ...rule }) =>
          verdict === "judge" ? { ...rule, verdict: "ask" as const, judge: true } : { ...rule, verdict },
        ),
      )
      .optional(),
    limits: z.array(limitSchema).optional(),
    budget: budgetSchema.optional(),
    tests: z.array(testSchema).optional(),
    audit: z
      .object({ args: z.enum(["hash", "redact", "full"]).optional() })
      .strict()
      .optional(),
    servers: z.record(z.string(), serverSchema).optional(),
  })
  .strict();

type PolicySchema = z.ZodType<RawPolicy> & { shape: object };
let extended: { shape: object; schema: PolicySchema } | undefined;

/** The policy schema with the registered engines' keys (`judge`, `engine`), built again after a registration. */
export function policySchema(): PolicySchema {
  const shape = engineShape();
  if (extended?.shape !== shape)
    extended = { shape, schema: basePolicySchema.extend(shape) as unknown as PolicySchema };
  return extended.schema;
}

/** A validated policy; the engines' keys are read with `engineValue`. */
export type RawPolicy = z.infer<typeof basePolicySchema>;
export type RawTool = z.infer<typeof toolSchema>;
export type DetectEntry = z.infer<typeof detectEntry>;
export type RawRule = z.infer<typeof ruleSchema>;
export type RawLimit = z.infer<typeof limitSchema>;
export type RawBudget = z.infer<typeof budgetSchema>;
export type RawTest = z.infer<typeof testSchema>;
export type RawServer = z.infer<typeof serverSchema>;

/** Top-level keys (the engines' included), for "did you mean". */
export function policyKeys(): string[] {
  return Object.keys(policySchema().shape);
}
