import { attrsProblem } from "./keys.js";
import { z } from "zod";

/**
 * The API's request and response shapes. Each schema validates bodies and, registered in
 * `components`, becomes a JSON Schema in the OpenAPI document: one definition for both.
 */
export const components = z.registry<{ id: string }>();

const id = z.string().min(1).max(256);
const verdict = z.enum(["allow", "flag", "ask", "deny"]);

export const AgentSchema = z
  .looseObject({ id: id.optional() })
  .describe("The agent making the call; attributes other than `id` are usable in `agent.<attr>` conditions.");
components.add(AgentSchema, { id: "Agent" });

export const CallSchema = z
  .strictObject({
    tool: id,
    args: z.record(z.string(), z.unknown()).optional(),
    server: id.optional(),
    agent: AgentSchema.optional(),
    session: id.optional(),
    cost: z.number().nonnegative().finite().optional(),
    labels: z.record(z.string(), z.array(z.string().max(128)).max(64)).optional(),
    token: z.string().max(512).optional().describe("An authority token of a plan (`POST /v1/plans`)."),
  })
  .describe("One tool call.");
components.add(CallSchema, { id: "Call" });

export const DecideRequestSchema = z.strictObject({
  call: CallSchema,
  wait: z
    .number()
    .int()
    .min(0)
    .max(600_000)
    .optional()
    .describe("For `ask`: how long to block (ms) until an approver decides; then the final Decision."),
});
components.add(DecideRequestSchema, { id: "DecideRequest" });

export const FindingSchema = z.object({
  code: z.string(),
  message: z.string(),
  arg: z.string().optional(),
  verdict: verdict.optional(),
});
components.add(FindingSchema, { id: "Finding" });

export const DecisionSchema = z.object({
  verdict,
  rule: z.string().nullable(),
  reason: z.string(),
  findings: z.array(FindingSchema),
  labels: z.array(z.string()),
  matched: z.array(z.string()).optional(),
  flows: z.array(z.object({ label: z.string(), arg: z.string(), source: z.string() })).optional(),
  tool: z.string().optional(),
  approval: z.string().optional().describe("The pending approval's id when the verdict is `ask`."),
  enforced: z
    .literal(false)
    .optional()
    .describe(
      "Present (false) when the verdict is observed, not enforced (`mode: observe`, `enforce: false`, `serve --observe`): the call may run.",
    ),
  observed: z
    .array(z.string())
    .optional()
    .describe("Rules or limits with `enforce: false` that matched but did not decide."),
});
components.add(DecisionSchema, { id: "Decision" });

export const OutputRequestSchema = z.strictObject({
  call: z.strictObject({
    tool: id,
    server: id.optional(),
    agent: AgentSchema.optional(),
    session: id,
  }),
  output: z.unknown().describe("What the tool returned; it is labelled and fingerprinted, never stored."),
});
components.add(OutputRequestSchema, { id: "OutputRequest" });

export const OutputResponseSchema = z.object({ labels: z.array(z.string()) });
components.add(OutputResponseSchema, { id: "OutputResponse" });

export const InputRequestSchema = z.strictObject({
  value: z.unknown(),
  labels: z.array(z.string().min(1).max(128)).min(1).max(64),
});
components.add(InputRequestSchema, { id: "InputRequest" });

export const PlanRequestSchema = z.strictObject({
  steps: z
    .array(
      z.strictObject({
        tool: id,
        args: z.record(z.string(), z.unknown()).optional(),
        max_calls: z.number().int().min(1).max(1_000_000).optional(),
      }),
    )
    .min(1)
    .max(1000),
  session: id.optional().describe("The session the plan governs: its calls must follow the plan."),
  ttlMs: z.number().int().min(1).max(86_400_000).optional(),
});
components.add(PlanRequestSchema, { id: "PlanRequest" });

export const ApprovalSchema = z.object({
  id: z.string(),
  status: z.enum(["pending", "approved", "denied", "expired", "used"]),
  callHash: z.string(),
  tool: z.string(),
  server: z.string().optional(),
  agent: z.string().optional(),
  session: z.string().optional(),
  rule: z.string().nullable(),
  reason: z.string(),
  argsSummary: z.string(),
  createdAt: z.number(),
  expiresAt: z.number(),
  decidedAt: z.number().optional(),
  decidedBy: z.string().optional(),
  decisionReason: z.string().optional(),
});
components.add(ApprovalSchema, { id: "Approval" });

export const ApprovalDecisionSchema = z.strictObject({
  reason: z.string().max(2000).optional(),
});
components.add(ApprovalDecisionSchema, { id: "ApprovalDecision" });

export const PolicySourceSchema = z.strictObject({
  source: z.string().min(1).max(1_000_000).describe("The policy text (YAML or JSON)."),
  activate: z.boolean().optional().describe("Activate the version once stored."),
});
components.add(PolicySourceSchema, { id: "PolicySource" });

export const DryRunRequestSchema = z
  .strictObject({
    source: z.string().min(1).max(1_000_000).optional(),
    hash: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .optional(),
    limit: z.number().int().min(1).max(5000).optional(),
  })
  .refine((body) => (body.source === undefined) !== (body.hash === undefined), {
    message: "give exactly one of `source` and `hash`",
  });
components.add(DryRunRequestSchema, { id: "DryRunRequest" });

export const PolicyIssueSchema = z.object({
  file: z.string(),
  line: z.number(),
  col: z.number(),
  message: z.string(),
  help: z.string().optional(),
});
components.add(PolicyIssueSchema, { id: "PolicyIssue" });

export const CreateKeySchema = z
  .strictObject({
    role: z.enum(["agent", "approver", "admin"]),
    name: z.string().min(1).max(128),
    agent: id.optional(),
    attrs: z.record(z.string(), z.unknown()).optional(),
  })
  .refine((body) => body.role !== "agent" || body.agent !== undefined, {
    message: "an `agent` key needs `agent`, the agent id it is bound to",
    path: ["agent"],
  })
  .superRefine((body, ctx) => {
    const problem = body.attrs === undefined ? undefined : attrsProblem(body.attrs);
    if (problem) ctx.addIssue({ code: "custom", message: `\`attrs\` ${problem}`, path: ["attrs"] });
  });
components.add(CreateKeySchema, { id: "CreateKey" });

export const AuditQuerySchema = z.strictObject({
  kind: z.enum(["decision", "approval", "output", "policy", "pin"]).optional(),
  agent: id.optional(),
  tool: id.optional(),
  verdict: verdict.optional(),
  session: id.optional(),
  rule: id.optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
  before: z.coerce.number().int().positive().optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});

export const StatsQuerySchema = z.strictObject({
  since: z.iso.datetime({ offset: true }).optional(),
  bucket: z.enum(["minute", "hour"]).optional(),
});

export const ErrorSchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  }),
});
components.add(ErrorSchema, { id: "Error" });
