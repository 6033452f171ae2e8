import type { Context } from "hono";
import { canonicalJson } from "../../core/canonical.js";
import { AuditQuerySchema, StatsQuerySchema } from "../schemas.js";
import type { Env, RouteGroup, ServerContext } from "./context.js";
import { parseQuery } from "./request.js";

/** The audit trail: search, statistics and the live event stream. */
export const auditRoutes: RouteGroup = (route, ctx) => {
  route.approver(
    {
      at: "GET /v1/audit",
      summary: "Search the audit trail, newest first; page with `before` (the `next` of the previous page).",
      query: AuditQuerySchema,
      response: { status: 200, description: "`{records: AuditRecord[], next?: number}`." },
    },
    async (c) => {
      const query = parseQuery(c, AuditQuerySchema);
      const page = await ctx.reader.query({
        ...query,
        since: query.since && new Date(query.since).toISOString(),
        until: query.until && new Date(query.until).toISOString(),
      });
      // Written iteratively: a stored record nested thousands deep must not fail the page.
      return c.body(canonicalJson(page), 200, { "Content-Type": "application/json" });
    },
  );

  route.approver(
    {
      at: "GET /v1/audit/stats",
      summary: "Decisions over time and the most denied tools and rules (default: the last hour by minute).",
      query: StatsQuerySchema,
      response: { status: 200, description: "Series, totals and top denied tools and rules." },
    },
    async (c) => {
      const { since, bucket } = parseQuery(c, StatsQuerySchema);
      const from = new Date(since ?? Date.now() - 3_600_000).toISOString();
      const stats = await ctx.reader.stats(from, bucket ?? "minute");
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

  route.approver(
    {
      at: "GET /v1/events",
      summary:
        "Server-sent events: `audit` (every record once durable), `approval` (decided or expired), `policy` (swapped or rejected).",
      response: { status: 200, description: "An event stream.", contentType: "text/event-stream" },
    },
    (c) => streamEvents(c, ctx),
  );
};

/**
 * One event stream client: a byte stream the Node adapter writes out as the connection takes it.
 * The bus hands every client the same encoded frames every COALESCE_MS (one enqueue each); what
 * is queued here is what the client has not taken, and past a bound the bus drops the client.
 */
function streamEvents(c: Context<Env>, ctx: ServerContext): Response {
  let leave: (() => void) | undefined;
  const body = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        controller.enqueue(
          ENCODER.encode(`event: hello\ndata: ${JSON.stringify({ policy: ctx.policies.active.hash })}\n\n`),
        );
        leave = ctx.bus.stream({
          write(chunk) {
            controller.enqueue(chunk);
            // With a high-water mark of 0 this is minus the bytes queued.
            return -(controller.desiredSize ?? 0);
          },
          drop() {
            leave?.();
            controller.error(new Error("dropped: the client does not read its events"));
            // End its connection rather than wait for it to drain.
            (c.env as { outgoing?: { destroy(): void } } | undefined)?.outgoing?.destroy();
          },
        });
      },
      cancel() {
        leave?.();
      },
    },
    new ByteLengthQueuingStrategy({ highWaterMark: 0 }),
  );
  return new Response(body, {
    headers: { "Content-Type": "text/event-stream", "Cache-Control": "no-cache", Connection: "keep-alive" },
  });
}

const ENCODER = new TextEncoder();
