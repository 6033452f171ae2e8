/**
 * Approvals on every path that asks a human: the Warden, the HTTP server, the SDK guard and the
 * MCP gate. Each must read the Warden's clock (`now`) for creation, expiry and answers, and show
 * approvers the same redacted summary of the arguments.
 */
import { join } from "node:path";
import type { CallToolResult, Client } from "@modelcontextprotocol/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ToolCatalog } from "../../src/adapters/mcp/catalog.js";
import { ToolGate } from "../../src/adapters/mcp/gate.js";
import { PinLedger } from "../../src/adapters/mcp/pins.js";
import { connectUpstream } from "../../src/adapters/mcp/upstream.js";
import { ToolGuard } from "../../src/adapters/guard.js";
import { PolicyDeniedError } from "../../src/core/index.js";
import type { Call } from "../../src/core/index.js";
import { Warden } from "../../src/gateway/index.js";
import { FIXTURE, tempDir } from "../mcp/helpers.js";
import { startTestServer } from "../server/helpers.js";
import type { TestServer } from "../server/helpers.js";

const TTL = 60_000;
/** An AWS access key id the secrets detector recognises. */
const SECRET = "AKIAZ7Q2M4N6P5R3T5V7";

/** A clock far from the machine's: an approval is fresh or expired only by what it says. */
function fakeClock() {
  const clock = { t: 1_000_000, now: () => clock.t };
  return clock;
}

async function until<T>(probe: () => Promise<T | undefined>): Promise<T> {
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const askPolicy = { version: 1, ask: ["refund"] };

describe("the Warden", () => {
  it("keeps an approval fresh, and expires it, by the injected clock", async () => {
    const clock = fakeClock();
    const warden = Warden.fromObject(askPolicy, { now: clock.now, approvals: { ttl: TTL } });
    const call: Call = { tool: "refund", session: "w", args: { amount: 1 } };
    const asked = await warden.decide(call);
    const approval = await warden.store.getApproval(asked.approval as string);
    expect(approval).toMatchObject({ createdAt: clock.t, expiresAt: clock.t + TTL });
    expect(await warden.approvals.settle(asked.approval as string, "approved", "ann")).toBeDefined();
    expect(await warden.decide(call)).toMatchObject({ verdict: "allow", rule: `approval:${asked.approval}` });

    const again = await warden.decide(call);
    clock.t += TTL;
    expect(await warden.approvals.settle(again.approval as string, "approved", "ann")).toBeUndefined();
    expect((await warden.decide(call)).verdict).toBe("ask");
  });

  it("a waiting call ends when its approval expires by the injected clock", async () => {
    const clock = fakeClock();
    const warden = Warden.fromObject(askPolicy, {
      now: clock.now,
      approvals: { ttl: TTL, wait: 600_000, poll: 5 },
    });
    const waiting = warden.enforce({ tool: "refund", args: { amount: 2 } }).catch((error) => error);
    await until(async () => (await warden.store.listApprovals({ status: "pending" }))[0]);
    clock.t += TTL;
    const error = await waiting;
    expect(error).toBeInstanceOf(PolicyDeniedError);
    expect(error.decision).toMatchObject({ verdict: "deny", rule: "approval-timeout" });
    expect(error.decision.reason).toContain("expired");
  });
});

describe("the HTTP server", () => {
  const clock = fakeClock();
  let t: TestServer;
  let agentKey: string;
  let approverKey: string;
  beforeAll(async () => {
    t = await startTestServer({ now: clock.now, approvalTtlMs: TTL });
    agentKey = await t.key("agent", "bot-1");
    approverKey = await t.key("approver", undefined, "alice");
  });
  afterAll(() => t.close());

  const decide = (call: Call, wait?: number) =>
    t.request("POST", "/v1/decide", { key: agentKey, body: wait === undefined ? { call } : { call, wait } });
  const approve = (id: string) => t.request("POST", `/v1/approvals/${id}/approve`, { key: approverKey });

  it("approves while the injected clock says the approval is fresh, refuses once it says expired", async () => {
    const call = { tool: "refund", session: "srv", args: { amount: 250 } };
    const asked = (await decide(call)).body;
    expect(asked.verdict).toBe("ask");
    expect((await approve(asked.approval)).status).toBe(200);
    expect((await decide(call)).body).toMatchObject({ verdict: "allow" });

    const again = (await decide(call)).body;
    clock.t += TTL;
    const late = await approve(again.approval);
    expect(late.status).toBe(409);
    expect((await decide(call)).body.verdict).toBe("ask");
  });

  it("a decide call waiting for an approver ends when the approval expires by the injected clock", async () => {
    const call = { tool: "refund", session: "srv-wait", args: { amount: 300 } };
    const waiting = decide(call, 600_000);
    await until(async () => {
      const { body } = await t.request("GET", "/v1/approvals", { key: approverKey });
      return body.approvals.find((a: { session: string }) => a.session === "srv-wait");
    });
    clock.t += TTL;
    const final = await waiting;
    expect(final.body).toMatchObject({ verdict: "deny", rule: "approval-timeout" });
  });
});

describe("the SDK guard", () => {
  it("settles an SDK's approval by the injected clock", async () => {
    const clock = fakeClock();
    const warden = Warden.fromObject(askPolicy, { now: clock.now, approvals: { ttl: TTL } });
    const guard = new ToolGuard(warden);
    const call: Call = { tool: "refund", session: "g", args: { amount: 3 } };
    const approve = async () => ({ approved: true, by: "sdk:1" });
    expect(await guard.decide(call, approve)).toMatchObject({ verdict: "allow" });

    const late = async () => {
      clock.t += TTL;
      return { approved: true, by: "sdk:2" };
    };
    expect((await guard.decide(call, late)).verdict).not.toBe("allow");
  });
});

describe("the MCP gate (`pins: ask`)", () => {
  const clock = fakeClock();
  let client: Client;
  let warden: Warden;
  let catalog: ToolCatalog;
  let gate: ToolGate;
  const session = () => warden.session({ id: "mcp" });
  const run = (args: Record<string, unknown>) => () =>
    client.callTool({ name: "get_weather", arguments: args }) as Promise<CallToolResult>;
  const call = (args: Record<string, unknown>) =>
    gate.call(catalog, { server: "weather", session: session() }, "get_weather", args, run(args));
  const approvalOf = (result: CallToolResult) =>
    (result._meta?.["toolwarden/decision"] as { approval?: string } | undefined)?.approval as string;

  beforeAll(async () => {
    client = await connectUpstream(
      { command: process.execPath, args: FIXTURE("rug-pull-server.ts") },
      { stderr: "ignore" },
    );
    warden = Warden.fromObject(
      { version: 1, default: "allow", servers: { weather: { pins: "ask" } } },
      { now: clock.now, approvals: { ttl: TTL } },
    );
    const ledger = await PinLedger.open(join(tempDir(), "pins.jsonl"), { env: {} });
    catalog = new ToolCatalog(client, "weather", warden, ledger);
    await catalog.ensure();
    await client.callTool({ name: "rug_pull", arguments: {} });
    await catalog.refresh();
    gate = new ToolGate(warden);
  });
  afterAll(() => client.close());

  it("shows approvers a redacted summary: a credential in the arguments never reaches them", async () => {
    const refused = await call({ city: SECRET });
    expect(refused._meta?.["toolwarden/decision"]).toMatchObject({ verdict: "ask", rule: "pin.changed" });
    const [pending] = await warden.store.listApprovals({ status: "pending" });
    expect(pending.argsSummary).not.toContain(SECRET);
    expect(JSON.parse(pending.argsSummary)).toEqual({ city: "[redacted secret]" });
  });

  it("keeps a pin's approval fresh, and expires it, by the injected clock", async () => {
    const asked = await call({ city: "Oslo" });
    const id = approvalOf(asked);
    expect(await warden.store.getApproval(id)).toMatchObject({ expiresAt: clock.t + TTL });
    expect(await warden.approvals.settle(id, "approved", "ann")).toBeDefined();
    expect((await call({ city: "Oslo" })).content).toEqual([{ type: "text", text: "Sunny in Oslo" }]);

    const again = await call({ city: "Oslo" });
    const late = approvalOf(again);
    clock.t += TTL;
    expect(await warden.approvals.settle(late, "approved", "ann")).toBeUndefined();
    expect((await call({ city: "Oslo" })).isError).toBe(true);
  });
});
