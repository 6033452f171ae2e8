import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPinnedAgent, createPinnedHttpsAgent, createPinnedLookup } from "./index.js";

let server: http.Server;
let port: number;

beforeAll(async () => {
  server = http.createServer((_req, res) => res.end("reached"));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** GETs through the agent; resolves with the body or the error code. */
function get(host: string, agent: http.Agent): Promise<string> {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path: "/", agent }, (res) => {
      let body = "";
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve(body));
    });
    req.on("error", (error: NodeJS.ErrnoException) => resolve(`error:${error.code}`));
  });
}

describe("createPinnedAgent", () => {
  it("refuses an IP literal on loopback (no DNS lookup happens for literals)", async () => {
    const agent = createPinnedAgent();
    expect(await get("127.0.0.1", agent)).toBe("error:url.private");
    agent.destroy();
  });

  it("refuses a name whose DNS answer is loopback, at connect time", async () => {
    const agent = createPinnedAgent({ private: "block" });
    expect(await get("localhost", agent)).toBe("error:url.private");
    agent.destroy();
  });

  it("connects to the same server when private addresses are allowed", async () => {
    const agent = createPinnedAgent({ private: "allow" });
    expect(await get("127.0.0.1", agent)).toBe("reached");
    expect(await get("localhost", agent)).toBe("reached");
    agent.destroy();
  });

  it("refuses metadata addresses even when private addresses are allowed", async () => {
    const agent = createPinnedAgent({ private: "allow" });
    expect(await get("169.254.169.254", agent)).toBe("error:url.metadata");
    agent.destroy();
  });

  it("refuses Unix sockets when private addresses are blocked", async () => {
    const agent = createPinnedAgent();
    const code = await new Promise<string>((resolve) => {
      const req = http.get({ socketPath: "/var/run/docker.sock", path: "/", agent }, () =>
        resolve("connected"),
      );
      req.on("error", (error: NodeJS.ErrnoException) => resolve(`error:${error.code}`));
    });
    expect(code).toBe("error:url.private");
    agent.destroy();
  });

  it("has an HTTPS counterpart that refuses before any TLS handshake", async () => {
    const agent = createPinnedHttpsAgent();
    const code = await new Promise<string>((resolve) => {
      const req = https.get({ host: "127.0.0.1", port, path: "/", agent }, () => resolve("connected"));
      req.on("error", (error: NodeJS.ErrnoException) => resolve(`error:${error.code}`));
    });
    expect(code).toBe("error:url.private");
    agent.destroy();
  });
});

describe("createPinnedLookup", () => {
  const lookup = (host: string, all: boolean, mode?: "block" | "allow") =>
    new Promise<unknown>((resolve) => {
      createPinnedLookup({ private: mode })(host, { all }, (error, address) =>
        resolve(error ? `error:${(error as NodeJS.ErrnoException).code}` : address),
      );
    });

  it("refuses when any answer is private", async () => {
    expect(await lookup("localhost", false)).toBe("error:url.private");
    expect(await lookup("localhost", true)).toBe("error:url.private");
  });

  it("answers in the shape asked for when allowed", async () => {
    expect(await lookup("localhost", false, "allow")).toMatch(/^(127\.0\.0\.1|::1)$/);
    const all = (await lookup("localhost", true, "allow")) as Array<{ address: string }>;
    expect(all.map((a) => a.address)).toContain("127.0.0.1");
  });

  it("passes DNS errors through", async () => {
    expect(await lookup("does-not-exist.invalid", false)).toBe("error:ENOTFOUND");
  });
});
