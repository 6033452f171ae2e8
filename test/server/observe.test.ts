import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./helpers.js";

describe("serve --observe", () => {
  let t: TestServer;
  let agentKey: string;
  beforeAll(async () => {
    t = await startTestServer({ observe: true });
    agentKey = await t.key("agent", "bot-1");
  });
  afterAll(() => t?.close());

  it("answers with the would-be verdict marked enforced: false, and audits it so", async () => {
    const res = await t.request("POST", "/v1/decide", {
      key: agentKey,
      body: { call: { tool: "delete_user", args: { id: 1 }, session: "obs-1" } },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ verdict: "deny", enforced: false });
    await t.server.audit.flush();
    const audit = await t.request("GET", "/v1/audit?tool=delete_user", { key: t.adminKey });
    expect(audit.body.records[0]).toMatchObject({ verdict: "deny", enforced: false });
  });

  it("the stats behind the dashboard's charts: how often each rule decided, and which never fired", async () => {
    await t.server.audit.flush();
    const stats = await t.request("GET", "/v1/audit/stats", { key: t.adminKey });
    expect(stats.status).toBe(200);
    expect(stats.body.rules).toContainEqual({ name: "deny:delete_*", count: 1 });
    expect(stats.body.neverFired).not.toContain("deny:delete_*");
    expect(stats.body.neverFired.length).toBeGreaterThan(0);
  });
});
