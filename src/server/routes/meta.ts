import type { RouteGroup } from "./context.js";

/** The server itself: health (public), the caller's identity, metrics. */
export const metaRoutes: RouteGroup = (route, ctx) => {
  route.public(
    {
      at: "GET /health",
      summary:
        "Liveness, whether the audit trail is keeping up and whether the state store answers. No key needed.",
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

  route.anyKey(
    {
      at: "GET /v1/whoami",
      summary: "The identity and role of the key.",
      response: { status: 200, description: "The key's identity (never the key)." },
    },
    (c) => c.json(c.get("identity")),
  );

  route.approver(
    {
      at: "GET /metrics",
      summary:
        "Prometheus metrics: decisions by verdict, decide latency histogram, pending approvals, audit spool.",
      response: { status: 200, description: "Prometheus text format.", contentType: "text/plain" },
    },
    async (c) => c.body(await ctx.metrics.text(), 200, { "Content-Type": ctx.metrics.contentType }),
  );
};
