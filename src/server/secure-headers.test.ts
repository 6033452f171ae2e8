import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { secureHeaders } from "hono/secure-headers";
import { describe, expect, it } from "vitest";
import { SECURITY_HEADERS, securityHeaders } from "./secure-headers.js";

/** The options SECURITY_HEADERS stands for. */
const OPTIONS = {
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
};

const expected = Object.fromEntries(SECURITY_HEADERS.map(([name, value]) => [name.toLowerCase(), value]));

function securityOf(headers: Headers): Record<string, string> {
  return Object.fromEntries([...headers].filter(([name]) => name in expected));
}

function app(): Hono {
  const app = new Hono();
  app.use("*", securityHeaders());
  app.get("/ok", (c) => c.json({ ok: true }));
  app.get("/boom", () => {
    throw new Error("boom");
  });
  app.onError((_error, c) => c.json({ error: "internal" }, 500));
  return app;
}

describe("securityHeaders", () => {
  it("sets exactly what Hono's secureHeaders sets with the same options", async () => {
    const probe = new Hono();
    probe.use("*", secureHeaders(OPTIONS));
    probe.get("/", (c) => c.text(""));
    const all = Object.fromEntries(
      [...(await probe.request("/")).headers].filter(([name]) => name !== "content-type"),
    );
    expect(all).toEqual(expected);
  });

  it("is on every response of the Node server (success, error, not found) and without it", async () => {
    const server = await new Promise<Server>((resolve) => {
      const s = serve({ fetch: app().fetch, port: 0, hostname: "127.0.0.1" }, () => resolve(s as Server));
    });
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      for (const [path, status] of [
        ["/ok", 200],
        ["/boom", 500],
        ["/nowhere", 404],
      ] as const) {
        const response = await fetch(`${base}${path}`);
        expect(response.status).toBe(status);
        expect(securityOf(response.headers)).toEqual(expected);
      }
    } finally {
      server.close();
    }
    for (const path of ["/ok", "/boom", "/nowhere"])
      expect(securityOf((await app().request(path)).headers)).toEqual(expected);
  });
});
