import type { ServerResponse } from "node:http";
import type { MiddlewareHandler } from "hono";

/**
 * The headers of every response: Hono's `secureHeaders` defaults, same-origin resources and a
 * Content-Security-Policy for the dashboard (self only, no framing), written out once; a test
 * holds them equal to what Hono's middleware sets with those options.
 */
export const SECURITY_HEADERS: ReadonlyArray<readonly [string, string]> = [
  ["Cross-Origin-Resource-Policy", "same-origin"],
  ["Cross-Origin-Opener-Policy", "same-origin"],
  ["Origin-Agent-Cluster", "?1"],
  ["Referrer-Policy", "no-referrer"],
  ["Strict-Transport-Security", "max-age=15552000; includeSubDomains"],
  ["X-Content-Type-Options", "nosniff"],
  ["X-DNS-Prefetch-Control", "off"],
  ["X-Download-Options", "noopen"],
  ["X-Frame-Options", "SAMEORIGIN"],
  ["X-Permitted-Cross-Domain-Policies", "none"],
  ["X-XSS-Protection", "0"],
  [
    "Content-Security-Policy",
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  ],
];

/**
 * Sets SECURITY_HEADERS on every response. Under the Node server they go on the Node response
 * before the handler runs: Hono's middleware sets them on the web Response afterwards, which made
 * the adapter rebuild every response through a web Headers object and a body stream (a quarter of
 * a bare server's throughput). Without a Node response (`app.request`), they are set as Hono does.
 */
export function securityHeaders(): MiddlewareHandler {
  return async (c, next) => {
    const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
    if (typeof outgoing?.setHeader === "function") {
      for (const [name, value] of SECURITY_HEADERS) outgoing.setHeader(name, value);
      return next();
    }
    await next();
    for (const [name, value] of SECURITY_HEADERS) c.res.headers.set(name, value);
  };
}
