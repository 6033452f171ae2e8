import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { INJECTED, SENDER } from "./fixtures/bank-server.js";
import { FIXTURE, proxied, tempDir, text } from "./helpers.js";
import type { Proxied } from "./helpers.js";

/** Issue 18: `fields` label the parts of `structuredContent`, through the real proxy and a real server. */
const POLICY = `version: 1
default: allow
tools:
  get_transactions: { produces: [], fields: { "transactions.subject": [untrusted] } }
  send_money: { sink: payment }
rules:
  - name: payee-from-untrusted-text
    when: { sink: payment, args.recipient: { flows: [untrusted] } }
    verdict: deny
    message: The payee IBAN was taken from a transfer subject.
  - name: payee-unknown
    when: { sink: payment, not: { args.recipient: { from: { tools: [get_transactions], match: value } } } }
    verdict: ask
`;

describe("mcp proxy: a server's structuredContent with an injected field", () => {
  const dir = tempDir();
  const log = join(dir, "payments.log");
  let proxy: Proxied;
  beforeAll(async () => {
    proxy = await proxied({
      dir,
      serverId: "bank",
      server: FIXTURE("bank-server.ts"),
      policy: POLICY,
      env: { FIXTURE_LOG: log },
    });
    const listed = await proxy.client.callTool({ name: "get_transactions", arguments: { n: 2 } });
    expect(listed.structuredContent).toMatchObject({ transactions: [{ sender: SENDER }, { id: 9 }] });
  });
  afterAll(() => proxy?.close());

  it("denies paying the IBAN injected through a transfer subject", async () => {
    const paid = await proxy.client.callTool({
      name: "send_money",
      arguments: { recipient: INJECTED, amount: 500 },
    });
    expect(paid.isError).toBe(true);
    expect(text(paid)).toBe(
      "toolwarden denied `send_money` (rule `payee-from-untrusted-text`): The payee IBAN was taken from a transfer subject. The call was not run.",
    );
    expect(paid._meta?.["toolwarden/decision"]).toMatchObject({
      verdict: "deny",
      rule: "payee-from-untrusted-text",
      flows: [{ label: "untrusted", arg: "recipient", source: expect.stringMatching(/^get_transactions#/) }],
    });
  });

  it("pays a sender of the structured result: a trusted whole value", async () => {
    const paid = await proxy.client.callTool({
      name: "send_money",
      arguments: { recipient: SENDER, amount: 12.99 },
    });
    expect(text(paid)).toBe(`sent 12.99 to ${SENDER}`);
    expect(readFileSync(log, "utf8")).toBe(`paid ${SENDER} 12.99\n`);
  });
});
