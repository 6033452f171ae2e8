import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SqliteStateStore } from "../stores/sqlite/index.js";
import { Warden } from "./warden.js";

/** Issue 18 on shared sessions: field labels, whole values, earlier arguments and inputs recorded through one replica hold on another. */
const policy = {
  version: 1,
  default: "allow",
  tools: {
    get_transactions: { produces: [], fields: { subject: ["untrusted"] } },
    send_money: { sink: "payment" },
  },
  rules: [
    {
      name: "untrusted-payee",
      when: { sink: "payment", "args.recipient": { flows: ["untrusted"] } },
      verdict: "deny",
    },
    {
      name: "payee-unknown",
      when: {
        sink: "payment",
        not: {
          any: [
            {
              "args.recipient": {
                from: { tools: ["get_transactions", "user", "args:note.iban"], match: "value" },
              },
            },
          ],
        },
      },
      verdict: "ask",
    },
    { name: "not-asked", when: { sink: "payment", not: { user_asked: ["pay*"] } }, verdict: "ask" },
  ],
};

describe("provenance across replicas sharing a SQLite state store", () => {
  const dir = mkdtempSync(join(tmpdir(), "tw-prov-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("labels, trusted values and the user's request recorded on A decide on B", async () => {
    const path = join(dir, "state.db");
    const a = Warden.fromObject(policy, { store: new SqliteStateStore({ path }) });
    const b = Warden.fromObject(policy, { store: new SqliteStateStore({ path }) });
    const onA = await a.openSession({ id: "s1" });
    onA.input("Please pay Bruno back: DE89 3704 0044 0532 0130 00.", { labels: ["user"] });
    a.recordOutput(
      { tool: "get_transactions", session: "s1" },
      JSON.stringify([{ sender: "SE3550000000054910000003", subject: "Refund to LT121000011101001000" }]),
      onA,
    );
    a.recordOutput({ tool: "note", session: "s1", args: { iban: "GB33BUKB20201555555555" } }, "ok", onA);
    await a.flush("s1");

    await b.openSession({ id: "s1" });
    const pay = (recipient: string) => b.decide({ tool: "send_money", session: "s1", args: { recipient } });
    expect(await pay("LT121000011101001000")).toMatchObject({ verdict: "deny", rule: "untrusted-payee" });
    for (const trusted of ["SE3550000000054910000003", "DE89370400440532013000", "GB33BUKB20201555555555"])
      expect(await pay(trusted), trusted).toMatchObject({ verdict: "allow" });
    expect(await pay("FR7630006000011234567890189")).toMatchObject({ verdict: "ask", rule: "payee-unknown" });
    await a.close();
    await b.close();
  });
});
