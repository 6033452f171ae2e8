import { answered } from "../../approvals/approvals.js";
import { hashValue } from "../../audit/chain.js";
import type { Call, Decision } from "../../core/index.js";
import type { Session } from "../../gateway/index.js";
import { HttpError, statusOf } from "../http-errors.js";
import type { ApiKeyIdentity } from "../keys.js";
import {
  DecideRequestSchema,
  DecisionSchema,
  InputRequestSchema,
  OutputRequestSchema,
  OutputResponseSchema,
  PlanRequestSchema,
} from "../schemas.js";
import type { RouteGroup, ServerContext } from "./context.js";
import { bindCall, bindFor, param, parseBody, parseJson, SessionUnavailable } from "./request.js";

/** Decisions, outputs, a session's inputs and report, plans: what an agent's runtime calls. */
export const decisionRoutes: RouteGroup = (route, ctx) => {
  route.agent(
    {
      at: "POST /v1/decide",
      summary:
        "Decide a tool call. With `wait`, an `ask` blocks until an approver decides (or the wait ends: deny).",
      body: DecideRequestSchema,
      response: { status: 200, description: "The Decision.", schema: DecisionSchema },
    },
    async (c) =>
      c.json(await decideRequest(ctx, c.get("identity"), await c.req.text(), () => c.req.raw.signal)),
  );

  route.agent(
    {
      at: "POST /v1/outputs",
      summary:
        "Report a tool's output: it is labelled with the tool's `produces` labels and fingerprinted for flow checks.",
      body: OutputRequestSchema,
      response: { status: 200, description: "The labels the output received.", schema: OutputResponseSchema },
    },
    async (c) => {
      const { call, output } = await parseBody(c, OutputRequestSchema);
      const bound = await bindCall(c, ctx, call);
      const labels = ctx.warden.recordOutput(bound, output);
      // Acknowledged only once durable: a restart or another replica must see this output.
      if (bound.session !== undefined) await flushed(ctx, bound.session, "output");
      if (labels.length) {
        await ctx.warden.appendAudit({
          kind: "output",
          tool: bound.tool,
          server: bound.server,
          session: bound.session,
          agent: typeof bound.agent?.id === "string" ? bound.agent.id : undefined,
          labels,
          data: { outputHash: hashValue(output ?? null) },
        });
      }
      return c.json({ labels });
    },
  );

  route.agent(
    {
      at: "POST /v1/sessions/:id/inputs",
      summary: "Record the user's own labelled input on a session (for `flows: { unless: [...] }`).",
      body: InputRequestSchema,
      response: { status: 200, description: "`{recorded: true}`." },
    },
    async (c) => {
      const { value, labels } = await parseBody(c, InputRequestSchema);
      const { session, agent } = await bindCall(c, ctx, { tool: "input", session: param(c, "id") } as Call);
      ctx.warden.session({ id: session, agent }).input(value, { labels });
      await flushed(ctx, session as string, "input");
      return c.json({ recorded: true });
    },
  );

  route.agent(
    {
      at: "POST /v1/plans",
      summary:
        "Declare a plan: signed, one single-use authority token per step, redeemable on any replica sharing the store.",
      body: PlanRequestSchema,
      response: { status: 201, description: "The plan with its tokens." },
    },
    async (c) => {
      const { steps, session, ttlMs } = await parseBody(c, PlanRequestSchema);
      if (session !== undefined) await bindCall(c, ctx, { tool: "plan", session } as Call);
      try {
        return c.json(await ctx.warden.createPlan(steps, { session, ttlMs }), 201);
      } catch (error) {
        // A plan the caller got wrong keeps its own status; anything else is the store failing.
        if (statusOf(error) < 500) throw error;
        throw new HttpError(503, "store_unavailable", `the plan was not stored: ${(error as Error).message}`);
      }
    },
  );

  route.anyKey(
    {
      at: "GET /v1/sessions/:id",
      summary: "A session's report: decisions by verdict and tool, spend, labels seen, flows blocked.",
      response: { status: 200, description: "The session report." },
    },
    async (c) => {
      const identity = c.get("identity");
      const id = param(c, "id");
      let report: Awaited<ReturnType<typeof ctx.warden.sessionReport>>;
      try {
        report = await ctx.warden.sessionReport(id);
      } catch (error) {
        throw new HttpError(503, "store_unavailable", (error as Error).message);
      }
      // The owner lives with the session in the store: an agent reads only its own sessions.
      if (identity.role === "agent" && report?.agent !== identity.agent) {
        throw new HttpError(
          403,
          "forbidden",
          `session \`${id}\` does not belong to agent \`${identity.agent}\``,
        );
      }
      if (!report) throw new HttpError(404, "not_found", `no session \`${id}\` on this server`);
      return c.json(report);
    },
  );
};

/**
 * POST /v1/decide once its key is checked, whatever carried it: the Hono route above, or the Node
 * fast path (`decide-on-node.ts`). `signal` ends a `wait` when the client goes away.
 */
export async function decideRequest(
  ctx: ServerContext,
  identity: ApiKeyIdentity,
  text: string,
  signal: () => AbortSignal,
): Promise<Decision> {
  const body = parseJson(text, DecideRequestSchema);
  let bound: { call: Call; session?: Session };
  try {
    bound = await bindFor(identity, ctx, body.call);
  } catch (error) {
    // A session that cannot be opened is an audited deny, not an HTTP error.
    if (!(error instanceof SessionUnavailable)) throw error;
    return ctx.warden.refuse(body.call, error.cause);
  }
  const decision = await decideCounted(ctx, bound.call, bound.session);
  if (decision.verdict === "ask" && decision.approval && body.wait) {
    return settleAsk(ctx, bound.call, decision, body.wait, signal());
  }
  return decision;
}

/** Waits until what was recorded on the session is durable; a 503 when the store does not take it. */
async function flushed(ctx: ServerContext, session: string, what: string): Promise<void> {
  try {
    await ctx.warden.flush(session);
  } catch (error) {
    throw new HttpError(
      503,
      "store_unavailable",
      `the ${what} was not recorded: ${(error as Error).message}`,
    );
  }
}

async function decideCounted(ctx: ServerContext, call: Call, opened?: Session): Promise<Decision> {
  const started = performance.now();
  const decision = await ctx.warden.decide(call, opened);
  ctx.metrics.decided(decision.verdict, (performance.now() - started) / 1000);
  ctx.recent.push(call, decision, new Date().toISOString());
  return decision;
}

/** Waits for the approver; approved: decide again (the approval lets this exact call through once); else deny. */
async function settleAsk(
  ctx: ServerContext,
  call: Call,
  decision: Decision,
  wait: number,
  signal: AbortSignal,
): Promise<Decision> {
  const id = decision.approval as string;
  const approval = await ctx.warden.approvals.wait(id, {
    ms: wait,
    signal,
    // Decisions made here arrive through the bus at once; the poll is for other replicas and the CLI.
    poll: 1000,
    subscribe: (listener) =>
      ctx.bus.subscribe((event) => {
        if (event.type === "approval") listener(event.approval);
      }),
  });
  if (signal.aborted) return decision;
  if (approval?.status === "approved") return decideCounted(ctx, call);
  const denied = answered(decision, approval, wait);
  ctx.metrics.decided("deny", 0);
  await ctx.warden.appendAudit({
    kind: "decision",
    session: call.session,
    agent: typeof call.agent?.id === "string" ? call.agent.id : undefined,
    tool: call.tool,
    server: call.server,
    verdict: denied.verdict,
    rule: denied.rule,
    reason: denied.reason,
    findings: denied.findings,
    labels: denied.labels,
    argsHash: hashValue(call.args ?? {}),
    policy: ctx.policies.active.hash,
    approval: {
      id,
      status: approval?.status ?? "timeout",
      ...(approval?.decidedBy ? { by: approval.decidedBy } : {}),
    },
  });
  return denied;
}
