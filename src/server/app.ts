import { isDeepStrictEqual } from "node:util";
import { Hono } from "hono";
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { secureHeaders } from "hono/secure-headers";
import { streamSSE } from "hono/streaming";
import type { z } from "zod";
import { hashValue } from "../audit/chain.js";
import { canonicalJson } from "../core/canonical.js";
import type { Call, Decision } from "../core/index.js";
import { PolicyLoadError, ToolwardenError } from "../core/index.js";
import { answered, approvalEvent } from "../approvals/approvals.js";
import type { Session, Warden } from "../gateway/index.js";
import type { ApprovalStatus } from "../stores/types.js";
import type { AuditReader } from "./audit-reader.js";
import type { DashboardAssets } from "./dashboard.js";
import { dryRun, type RecentCalls } from "./dry-run.js";
import type { EventBus, ServerEvent } from "./events.js";
import type { ApiKeyIdentity, ApiKeyStore, Role } from "./keys.js";
import type { ServerMetrics } from "./metrics.js";
import { openApiDocument, type RouteDoc } from "./openapi.js";
import type { PolicyManager } from "./policy-versions.js";
import {
  ApprovalDecisionSchema,
  ApprovalSchema,
  AuditQuerySchema,
  CreateKeySchema,
  DecideRequestSchema,
  DecisionSchema,
  DryRunRequestSchema,
  InputRequestSchema,
  PlanRequestSchema,
  OutputRequestSchema,
  OutputResponseSchema,
  PolicySourceSchema,
  StatsQuerySchema,
} from "./schemas.js";
import { HttpError, STATUS_BY_CODE, statusOf } from "./http-errors.js";
import type { ErrorStatus } from "./http-errors.js";

/** Everything the routes work with; `startServer` builds it. */
export interface ServerContext {
  warden: Warden;
  keys: ApiKeyStore;
  policies: PolicyManager;
  reader: AuditReader;
  bus: EventBus;
  metrics: ServerMetrics;
  recent: RecentCalls;
  dashboard: DashboardAssets;
  /** Largest request body in bytes. */
  maxBodyBytes: number;
  /** Origins allowed cross-origin requests; none by default (CORS off). */
  corsOrigins?: string[];
  /** Whether the audit trail keeps up and the state store answers; `checks` is public, `detail` is not. */
  health():
    | { ok: boolean; checks?: Record<string, string>; detail: Record<string, unknown> }
    | Promise<{ ok: boolean; checks?: Record<string, string>; detail: Record<string, unknown> }>;
  log(line: string): void;
  version: string;
}

type Env = { Variables: { identity: ApiKeyIdentity; session?: Session } };
type Handler = (c: Context<Env>) => Response | Promise<Response>;

/** Builds the HTTP app: the versioned JSON API, the event stream, metrics, OpenAPI and the dashboard. */
export function createApp(ctx: ServerContext): { app: Hono<Env>; routes: RouteDoc[] } {
  const app = new Hono<Env>();
  const routes: RouteDoc[] = [];

  app.use(
    "*",
    secureHeaders({
      contentSecurityPolicy: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", "data:"],
        connectSrc: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'none'"],
      },
      crossOriginResourcePolicy: "same-origin",
    }),
  );
  if (ctx.corsOrigins?.length) {
    app.use(
      "/v1/*",
      cors({
        origin: ctx.corsOrigins,
        allowHeaders: ["Authorization", "Content-Type"],
        allowMethods: ["GET", "POST", "DELETE"],
      }),
    );
  }
  const tooLarge = (c: Context) =>
    fail(c, 413, "body_too_large", `the request body is larger than ${ctx.maxBodyBytes} bytes`);
  const streamedLimit = bodyLimit({ maxSize: ctx.maxBodyBytes, onError: tooLarge });
  app.use("/v1/*", (c, next) => {
    const method = c.req.method;
    if (method === "GET" || method === "HEAD") return next();
    // A declared length is checked from the header alone: reading `body` here (as bodyLimit does)
    // makes the Node adapter build a web Request and stream for every call, which the handler's
    // own read of the body does without. A body without a length is counted as it streams.
    const length = c.req.header("content-length");
    if (length !== undefined && c.req.header("transfer-encoding") === undefined)
      return Number.parseInt(length, 10) > ctx.maxBodyBytes ? Promise.resolve(tooLarge(c)) : next();
    return streamedLimit(c, next);
  });

  const route = (doc: RouteDoc, handler: Handler) => {
    routes.push(doc);
    const guards: MiddlewareHandler<Env>[] =
      doc.roles === "public" ? [] : [authenticate(ctx.keys, doc.roles)];
    app.on(doc.method.toUpperCase(), [doc.path], ...guards, handler);
  };

  route(
    {
      method: "get",
      path: "/health",
      summary:
        "Liveness, whether the audit trail is keeping up and whether the state store answers. No key needed.",
      tag: "server",
      roles: "public",
      response: {
        status: 200,
        description:
          '`{status: "ok", checks: {audit, store}}`, or 503 `degraded` while an audit sink is backed up or the store is down.',
      },
    },
    async (c) => {
      const health = await ctx.health();
      return c.json(
        { status: health.ok ? "ok" : "degraded", ...(health.checks ? { checks: health.checks } : {}) },
        health.ok ? 200 : 503,
      );
    },
  );

  route(
    {
      method: "get",
      path: "/v1/whoami",
      summary: "The identity and role of the key.",
      tag: "server",
      roles: ["agent", "approver", "admin"],
      response: { status: 200, description: "The key's identity (never the key)." },
    },
    (c) => c.json(c.get("identity")),
  );

  route(
    {
      method: "post",
      path: "/v1/decide",
      summary:
        "Decide a tool call. With `wait`, an `ask` blocks until an approver decides (or the wait ends: deny).",
      tag: "decisions",
      roles: ["agent", "admin"],
      body: DecideRequestSchema,
      response: { status: 200, description: "The Decision.", schema: DecisionSchema },
    },
    async (c) => {
      const body = await parseBody(c, DecideRequestSchema);
      if (body instanceof Response) return body;
      const bound = await bindCall(c, ctx, body.call);
      if (bound instanceof Response) return bound;
      if (bound instanceof Error) return c.json(await ctx.warden.refuse(body.call, bound));
      const call = bound;
      let decision = await decideCounted(ctx, call, c.get("session"));
      if (decision.verdict === "ask" && decision.approval && body.wait) {
        decision = await settleAsk(ctx, call, decision, body.wait, c.req.raw.signal);
      }
      return c.json(decision);
    },
  );

  route(
    {
      method: "post",
      path: "/v1/outputs",
      summary:
        "Report a tool's output: it is labelled with the tool's `produces` labels and fingerprinted for flow checks.",
      tag: "decisions",
      roles: ["agent", "admin"],
      body: OutputRequestSchema,
      response: { status: 200, description: "The labels the output received.", schema: OutputResponseSchema },
    },
    async (c) => {
      const body = await parseBody(c, OutputRequestSchema);
      if (body instanceof Response) return body;
      const bound = await bindCall(c, ctx, body.call);
      if (bound instanceof Response) return bound;
      if (bound instanceof Error) return fail(c, 503, "store_unavailable", bound.message);
      const labels = ctx.warden.recordOutput(bound, body.output);
      // Acknowledged only once durable: a restart or another replica must see this output.
      if (bound.session !== undefined) {
        try {
          await ctx.warden.flush(bound.session);
        } catch (error) {
          return fail(
            c,
            503,
            "store_unavailable",
            `the output was not recorded: ${(error as Error).message}`,
          );
        }
      }
      if (labels.length) {
        await ctx.warden.appendAudit({
          kind: "output",
          tool: bound.tool,
          server: bound.server,
          session: bound.session,
          agent: typeof bound.agent?.id === "string" ? bound.agent.id : undefined,
          labels,
          data: { outputHash: hashValue(body.output ?? null) },
        });
      }
      return c.json({ labels });
    },
  );

  route(
    {
      method: "post",
      path: "/v1/sessions/:id/inputs",
      summary: "Record the user's own labelled input on a session (for `flows: { unless: [...] }`).",
      tag: "decisions",
      roles: ["agent", "admin"],
      body: InputRequestSchema,
      response: { status: 200, description: "`{recorded: true}`." },
    },
    async (c) => {
      const body = await parseBody(c, InputRequestSchema);
      if (body instanceof Response) return body;
      const bound = await bindCall(c, ctx, { tool: "input", session: param(c, "id") } as Call);
      if (bound instanceof Response) return bound;
      if (bound instanceof Error) return fail(c, 503, "store_unavailable", bound.message);
      ctx.warden
        .session({ id: bound.session, agent: bound.agent })
        .input(body.value, { labels: body.labels });
      try {
        await ctx.warden.flush(bound.session as string);
      } catch (error) {
        return fail(c, 503, "store_unavailable", `the input was not recorded: ${(error as Error).message}`);
      }
      return c.json({ recorded: true });
    },
  );

  route(
    {
      method: "post",
      path: "/v1/plans",
      summary:
        "Declare a plan: signed, one single-use authority token per step, redeemable on any replica sharing the store.",
      tag: "decisions",
      roles: ["agent", "admin"],
      body: PlanRequestSchema,
      response: { status: 201, description: "The plan with its tokens." },
    },
    async (c) => {
      const body = await parseBody(c, PlanRequestSchema);
      if (body instanceof Response) return body;
      if (body.session !== undefined) {
        const bound = await bindCall(c, ctx, { tool: "plan", session: body.session } as Call);
        if (bound instanceof Response) return bound;
        if (bound instanceof Error) return fail(c, 503, "store_unavailable", bound.message);
      }
      try {
        const plan = await ctx.warden.createPlan(body.steps, { session: body.session, ttlMs: body.ttlMs });
        return c.json(plan, 201);
      } catch (error) {
        if (error instanceof ToolwardenError && statusOf(error, 503) !== 503) {
          return fail(c, statusOf(error), error.code, error.message);
        }
        return fail(c, 503, "store_unavailable", `the plan was not stored: ${(error as Error).message}`);
      }
    },
  );

  route(
    {
      method: "get",
      path: "/v1/sessions/:id",
      summary: "A session's report: decisions by verdict and tool, spend, labels seen, flows blocked.",
      tag: "decisions",
      roles: ["agent", "approver", "admin"],
      response: { status: 200, description: "The session report." },
    },
    async (c) => {
      const id = param(c, "id");
      const identity = c.get("identity");
      let report: Awaited<ReturnType<typeof ctx.warden.sessionReport>>;
      try {
        report = await ctx.warden.sessionReport(id);
      } catch (error) {
        return fail(c, 503, "store_unavailable", (error as Error).message);
      }
      // The owner lives with the session in the store: an agent reads only its own sessions.
      if (identity.role === "agent" && report?.agent !== identity.agent) {
        return fail(c, 403, "forbidden", `session \`${id}\` does not belong to agent \`${identity.agent}\``);
      }
      return report ? c.json(report) : fail(c, 404, "not_found", `no session \`${id}\` on this server`);
    },
  );

  route(
    {
      method: "get",
      path: "/v1/approvals",
      summary: "Approvals, pending by default (`?status=approved|denied|expired|used|all`).",
      tag: "approvals",
      roles: ["approver", "admin"],
      response: { status: 200, description: "`{approvals: Approval[]}`, newest first." },
    },
    async (c) => {
      const status = c.req.query("status") ?? "pending";
      const valid = ["pending", "approved", "denied", "expired", "used", "all"];
      if (!valid.includes(status))
        return fail(c, 400, "invalid_query", `\`status\` must be one of ${valid.join(", ")}`);
      const approvals = await ctx.warden.store.listApprovals(
        status === "all" ? {} : { status: status as ApprovalStatus },
      );
      approvals.sort((a, b) => b.createdAt - a.createdAt);
      return c.json({ approvals });
    },
  );

  for (const [action, status] of [
    ["approve", "approved"],
    ["deny", "denied"],
  ] as const) {
    route(
      {
        method: "post",
        path: `/v1/approvals/:id/${action}`,
        summary: `${action === "approve" ? "Approve" : "Deny"} a pending call, with an optional reason; the approver is the key's holder.`,
        tag: "approvals",
        roles: ["approver", "admin"],
        body: ApprovalDecisionSchema,
        response: { status: 200, description: "The decided approval.", schema: ApprovalSchema },
      },
      async (c) => {
        const body = await parseBody(c, ApprovalDecisionSchema, true);
        if (body instanceof Response) return body;
        const id = param(c, "id");
        const identity = c.get("identity");
        const decided = await ctx.warden.approvals.settle(id, status, identity.name, body.reason);
        if (!decided) {
          const existing = await ctx.warden.store.getApproval(id);
          return existing
            ? fail(c, 409, "not_pending", `approval \`${id}\` is ${existing.status}, not pending`)
            : fail(c, 404, "not_found", `no approval \`${id}\``);
        }
        ctx.bus.emit({ type: "approval", approval: decided });
        await ctx.warden.appendAudit(
          approvalEvent(decided, status, identity.name, body.reason, { key: identity.id }),
        );
        return c.json(decided);
      },
    );
  }

  route(
    {
      method: "get",
      path: "/v1/audit",
      summary: "Search the audit trail, newest first; page with `before` (the `next` of the previous page).",
      tag: "audit",
      roles: ["approver", "admin"],
      query: AuditQuerySchema,
      response: { status: 200, description: "`{records: AuditRecord[], next?: number}`." },
    },
    async (c) => {
      const query = parseQuery(c, AuditQuerySchema);
      if (query instanceof Response) return query;
      const page = await ctx.reader.query({
        ...query,
        since: query.since && new Date(query.since).toISOString(),
        until: query.until && new Date(query.until).toISOString(),
      });
      // Written iteratively: a stored record nested thousands deep must not fail the page.
      return c.body(canonicalJson(page), 200, { "Content-Type": "application/json" });
    },
  );

  route(
    {
      method: "get",
      path: "/v1/audit/stats",
      summary: "Decisions over time and the most denied tools and rules (default: the last hour by minute).",
      tag: "audit",
      roles: ["approver", "admin"],
      query: StatsQuerySchema,
      response: { status: 200, description: "Series, totals and top denied tools and rules." },
    },
    async (c) => {
      const query = parseQuery(c, StatsQuerySchema);
      if (query instanceof Response) return query;
      const since = query.since
        ? new Date(query.since).toISOString()
        : new Date(Date.now() - 3_600_000).toISOString();
      const stats = await ctx.reader.stats(since, query.bucket ?? "minute");
      // The active policy's rules, shorthand entries and limits that decided nothing in the range.
      const raw = ctx.policies.active.loaded.policy;
      const fired = new Set(stats.rules.map((r) => r.name));
      const neverFired = [
        ...(["allow", "flag", "ask", "deny"] as const).flatMap((v) =>
          (raw[v] ?? []).map((glob) => `${v}:${glob}`),
        ),
        ...(raw.rules ?? []).map((rule) => rule.name),
        ...(raw.limits ?? []).map((limit) => limit.name),
      ].filter((name) => !fired.has(name));
      return c.json({ ...stats, neverFired });
    },
  );

  route(
    {
      method: "get",
      path: "/v1/events",
      summary:
        "Server-sent events: `audit` (every record once durable), `approval` (decided or expired), `policy` (swapped or rejected).",
      tag: "audit",
      roles: ["approver", "admin"],
      response: { status: 200, description: "An event stream.", contentType: "text/event-stream" },
    },
    (c) => streamEvents(c, ctx),
  );

  route(
    {
      method: "get",
      path: "/v1/policy",
      summary: "The active policy: name, hash and the text of every file it is made of.",
      tag: "policy",
      roles: ["approver", "admin"],
      response: { status: 200, description: "The active policy." },
    },
    (c) => {
      const policy = ctx.policies.active;
      return c.json({
        name: policy.name,
        hash: policy.hash,
        file: ctx.policies.file,
        default: policy.defaultVerdict,
        fail: policy.failOpen ? "open" : "closed",
        tools: policy.tools.size,
        limits: policy.limits.length,
        sources: policy.loaded.sources.map((source) => ({ file: source.file, text: source.text })),
      });
    },
  );

  route(
    {
      method: "get",
      path: "/v1/policy/versions",
      summary: "Every stored policy version, newest first.",
      tag: "policy",
      roles: ["approver", "admin"],
      response: { status: 200, description: "`{versions: [...]}`." },
    },
    (c) => c.json({ versions: ctx.policies.list() }),
  );

  route(
    {
      method: "get",
      path: "/v1/policy/versions/:hash",
      summary: "One version and its text.",
      tag: "policy",
      roles: ["approver", "admin"],
      response: { status: 200, description: "`{version, source}`." },
    },
    (c) => {
      const found = ctx.policies.get(param(c, "hash"));
      return found ? c.json(found) : fail(c, 404, "not_found", `no policy version \`${param(c, "hash")}\``);
    },
  );

  route(
    {
      method: "post",
      path: "/v1/policy/validate",
      summary: "Validate policy text; errors name line and column.",
      tag: "policy",
      roles: ["admin"],
      body: PolicySourceSchema,
      response: { status: 200, description: "`{valid: true, name, hash}`; 422 `{valid: false, errors}`." },
    },
    async (c) => {
      const body = await parseBody(c, PolicySourceSchema);
      if (body instanceof Response) return body;
      try {
        const policy = await ctx.policies.validateUpload(body.source);
        return c.json({ valid: true, name: policy.name, hash: policy.hash });
      } catch (error) {
        return policyErrors(c, error);
      }
    },
  );

  route(
    {
      method: "post",
      path: "/v1/policy/versions",
      summary: "Upload a policy version (validated first; `activate: true` to switch to it).",
      tag: "policy",
      roles: ["admin"],
      body: PolicySourceSchema,
      response: {
        status: 201,
        description: "`{version, change?}`; 422 with the errors when invalid (nothing is stored).",
      },
    },
    async (c) => {
      const body = await parseBody(c, PolicySourceSchema);
      if (body instanceof Response) return body;
      try {
        return c.json(
          await ctx.policies.upload(body.source, c.get("identity").name, body.activate ?? false),
          201,
        );
      } catch (error) {
        return policyErrors(c, error);
      }
    },
  );

  route(
    {
      method: "post",
      path: "/v1/policy/dry-run",
      summary: "Which recent decisions a policy (text or stored version) would change.",
      tag: "policy",
      roles: ["admin"],
      body: DryRunRequestSchema,
      response: { status: 200, description: "Calls compared and the decisions that would change." },
    },
    async (c) => {
      const body = await parseBody(c, DryRunRequestSchema);
      if (body instanceof Response) return body;
      try {
        let candidate =
          body.source !== undefined ? await ctx.policies.compileUploadAsync(body.source) : undefined;
        if (!candidate) {
          const stored = ctx.policies.get(body.hash as string);
          if (!stored) return fail(c, 404, "not_found", `no policy version \`${body.hash}\``);
          candidate = await ctx.policies.compileUploadAsync(stored.source);
        }
        return c.json(
          await dryRun(ctx.policies.active, candidate, ctx.recent, ctx.reader, body.limit ?? 500),
        );
      } catch (error) {
        return policyErrors(c, error);
      }
    },
  );

  route(
    {
      method: "post",
      path: "/v1/policy/versions/:hash/activate",
      summary: "Activate a stored version (audited with both hashes).",
      tag: "policy",
      roles: ["admin"],
      response: { status: 200, description: "`{action, from, to, by}`." },
    },
    async (c) => {
      try {
        return c.json(await ctx.policies.activate(param(c, "hash"), c.get("identity").name));
      } catch (error) {
        return policyErrors(c, error);
      }
    },
  );

  route(
    {
      method: "post",
      path: "/v1/policy/rollback",
      summary: "Return to the version that was active before the current one.",
      tag: "policy",
      roles: ["admin"],
      response: {
        status: 200,
        description: "`{action, from, to, by}`; 409 when there is nothing to roll back to.",
      },
    },
    async (c) => {
      try {
        return c.json(await ctx.policies.rollback(c.get("identity").name));
      } catch (error) {
        return policyErrors(c, error);
      }
    },
  );

  route(
    {
      method: "get",
      path: "/v1/keys",
      summary: "The API keys (ids, names, roles; never the keys).",
      tag: "keys",
      roles: ["admin"],
      response: { status: 200, description: "`{keys: [...]}`." },
    },
    (c) => c.json({ keys: ctx.keys.list() }),
  );

  route(
    {
      method: "post",
      path: "/v1/keys",
      summary: "Create an API key; the key is in this response only.",
      tag: "keys",
      roles: ["admin"],
      body: CreateKeySchema,
      response: { status: 201, description: "`{key, identity}`." },
    },
    async (c) => {
      const body = await parseBody(c, CreateKeySchema);
      if (body instanceof Response) return body;
      return c.json(await ctx.keys.createKey(body), 201);
    },
  );

  route(
    {
      method: "delete",
      path: "/v1/keys/:id",
      summary: "Revoke an API key.",
      tag: "keys",
      roles: ["admin"],
      response: { status: 204, description: "Revoked." },
    },
    async (c) =>
      (await ctx.keys.revokeKey(param(c, "id")))
        ? c.body(null, 204)
        : fail(c, 404, "not_found", `no key \`${param(c, "id")}\``),
  );

  route(
    {
      method: "get",
      path: "/metrics",
      summary:
        "Prometheus metrics: decisions by verdict, decide latency histogram, pending approvals, audit spool.",
      tag: "server",
      roles: ["approver", "admin"],
      response: { status: 200, description: "Prometheus text format.", contentType: "text/plain" },
    },
    async (c) => c.body(await ctx.metrics.text(), 200, { "Content-Type": ctx.metrics.contentType }),
  );

  const document = openApiDocument(routes, ctx.version);
  app.get("/openapi.json", (c) => c.json(document));

  for (const [path, asset] of Object.entries(ctx.dashboard)) {
    app.get(path, (c) =>
      c.body(asset.body, 200, { "Content-Type": asset.type, "Cache-Control": "no-cache" }),
    );
  }

  app.notFound((c) => fail(c, 404, "not_found", `no route ${c.req.method} ${new URL(c.req.url).pathname}`));
  app.onError((error, c) => {
    if (error instanceof HttpError) return fail(c, error.status, error.code, error.message, error.issues);
    if (error instanceof ToolwardenError && STATUS_BY_CODE[error.code])
      return fail(c, statusOf(error), error.code, error.message);
    ctx.log(`internal error on ${c.req.method} ${new URL(c.req.url).pathname}: ${error.message}`);
    return fail(c, 500, "internal", "internal error");
  });
  return { app, routes };
}

/** Checks the bearer key and its role; sets `identity`. */
function authenticate(keys: ApiKeyStore, roles: readonly Role[]): MiddlewareHandler<Env> {
  return async (c, next) => {
    const header = c.req.header("Authorization");
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match) {
      c.header("WWW-Authenticate", 'Bearer realm="toolwarden"');
      return fail(c, 401, "unauthorized", "missing api key: send `Authorization: Bearer <key>`");
    }
    const identity = await keys.verifyFresh(match[1]);
    if (!identity) {
      c.header("WWW-Authenticate", 'Bearer realm="toolwarden", error="invalid_token"');
      return fail(c, 401, "unauthorized", "invalid api key");
    }
    if (!roles.includes(identity.role)) {
      return fail(
        c,
        403,
        "forbidden",
        `this needs the role ${roles.join(" or ")}; the key has the role ${identity.role}`,
      );
    }
    c.set("identity", identity);
    await next();
  };
}

/**
 * An `agent` key decides only for its own agent id, with the attributes bound to the key, and only
 * in sessions of that agent. Other roles act for anyone.
 */
async function bindCall<C extends Pick<Call, "tool" | "agent" | "session" | "server">>(
  c: Context<Env>,
  ctx: ServerContext,
  call: C,
): Promise<C | Response | Error> {
  const identity = c.get("identity");
  let bound = call;
  if (identity.role === "agent") {
    const claimed = call.agent ?? {};
    if (claimed.id !== undefined && claimed.id !== identity.agent) {
      return fail(
        c,
        403,
        "forbidden",
        `this key decides only for agent \`${identity.agent}\`, not \`${claimed.id}\``,
      );
    }
    for (const [name, value] of Object.entries(claimed)) {
      if (name !== "id" && !isDeepStrictEqual(value, identity.attrs?.[name])) {
        return fail(c, 403, "forbidden", `agent attribute \`${name}\` comes from the key, not the call`);
      }
    }
    bound = { ...call, agent: { ...identity.attrs, id: identity.agent } };
  }
  if (typeof bound.session === "string") {
    // The owner is stored with the session (the first agent to open it) and expires with it.
    let owner: string | undefined;
    try {
      const session = await ctx.warden.openSession({ id: bound.session, agent: bound.agent });
      // Up to date for this request: the decision does not read it again.
      c.set("session", session);
      owner = session.owner;
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    }
    const agent = typeof bound.agent?.id === "string" ? bound.agent.id : undefined;
    if (identity.role === "agent" && owner !== agent) {
      return fail(c, 403, "forbidden", `session \`${bound.session}\` belongs to another agent`);
    }
  }
  return bound;
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

/** Bytes of events waiting for one event stream client past which it is dropped (it reconnects). */
const MAX_QUEUED_EVENT_BYTES = 1 << 20;
/** How long a client's writer lets events gather before one write (a dashboard does not notice). */
const EVENT_COALESCE_MS = 25;

/**
 * One event stream client. Each event is serialised once by the bus and queued here as its frame;
 * the writer sends everything queued in one write and waits for it to be taken (backpressure). A
 * client that lets more than MAX_QUEUED_EVENT_BYTES pile up is dropped (its connection closed) so
 * it never holds up the decisions that produce the events.
 */
function streamEvents(c: Context<Env>, ctx: ServerContext): Response {
  return streamSSE(c, async (stream) => {
    const frames: string[] = [];
    let queued = 0;
    let dropped = false;
    let wake: (() => void) | undefined;
    const drop = () => {
      dropped = true;
      unsubscribe();
      ctx.bus.dropped++;
      stream.abort();
      // The client is not reading: end its connection rather than wait for it to drain.
      (c.env as { outgoing?: { destroy(): void } } | undefined)?.outgoing?.destroy();
      wake?.();
    };
    const unsubscribe = ctx.bus.subscribe((_event, frame) => {
      if (dropped) return;
      const text = frame();
      queued += text.length;
      if (queued > MAX_QUEUED_EVENT_BYTES) return drop();
      frames.push(text);
      wake?.();
    });
    stream.onAbort(() => {
      unsubscribe();
      wake?.();
    });
    try {
      await stream.write(`event: hello\ndata: ${JSON.stringify({ policy: ctx.policies.active.hash })}\n\n`);
      while (!stream.aborted && !dropped) {
        if (!frames.length) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(done, 15_000);
            function done() {
              clearTimeout(timer);
              wake = undefined;
              resolve();
            }
            wake = done;
          });
        }
        if (stream.aborted || dropped) break;
        if (!frames.length) {
          await stream.write(": keep-alive\n\n");
          continue;
        }
        // Coalesce: under load one write per client every EVENT_COALESCE_MS instead of one per event.
        if (queued < 64 * 1024) await new Promise((resolve) => setTimeout(resolve, EVENT_COALESCE_MS));
        if (stream.aborted || dropped) break;
        const chunk = frames.length === 1 ? frames[0]! : frames.join("");
        frames.length = 0;
        await stream.write(chunk);
        queued -= chunk.length;
      }
    } finally {
      unsubscribe();
    }
  });
}

/** A path parameter; the route's pattern guarantees it is there. */
function param(c: Context, name: string): string {
  return c.req.param(name) ?? "";
}

/** An error response: `{error: {code, message, issues?}}`. */
function fail(
  c: Context,
  status: ErrorStatus,
  code: string,
  message: string,
  issues?: Array<{ path: string; message: string }>,
): Response {
  return c.json({ error: { code, message, ...(issues ? { issues } : {}) } }, status);
}

/** The body as JSON checked against `schema`; a 400 response when it is not JSON or does not match. */
async function parseBody<S extends z.ZodType>(
  c: Context,
  schema: S,
  emptyIsObject = false,
): Promise<z.infer<S> | Response> {
  const text = await c.req.text();
  let value: unknown;
  if (emptyIsObject && text.trim() === "") value = {};
  else {
    try {
      value = JSON.parse(text);
    } catch (error) {
      return fail(c, 400, "invalid_json", `the body is not JSON: ${(error as Error).message}`);
    }
  }
  return checked(c, schema, value, "invalid_body", "the body");
}

function parseQuery<S extends z.ZodType>(c: Context, schema: S): z.infer<S> | Response {
  return checked(c, schema, c.req.query(), "invalid_query", "the query");
}

function checked<S extends z.ZodType>(
  c: Context,
  schema: S,
  value: unknown,
  code: string,
  what: string,
): z.infer<S> | Response {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((issue) => ({
    path: issue.path.map(String).join(".") || "(root)",
    message: issue.message,
  }));
  const first = issues[0];
  return fail(c, 400, code, `${what} does not match the schema: \`${first.path}\`: ${first.message}`, issues);
}

function policyErrors(c: Context, error: unknown): Response {
  if (error instanceof PolicyLoadError) {
    const errors = error.issues.map(({ file, line, col, message, help }) => ({
      file,
      line,
      col,
      message,
      ...(help ? { help } : {}),
    }));
    return c.json(
      {
        valid: false,
        error: {
          code: "policy_invalid",
          message: error.issues.map((i) => `${i.file}:${i.line}:${i.col}: ${i.message}`).join("\n"),
        },
        errors,
      },
      422,
    );
  }
  if (error instanceof ToolwardenError) {
    return fail(c, statusOf(error, 409), error.code, error.message);
  }
  throw error;
}
