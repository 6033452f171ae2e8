import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
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
