import { describe, expect, it } from "vitest";
import { Session } from "./session.js";
import { Warden } from "./warden.js";

const policy = {
  version: 1,
  default: "allow",
  tools: { web_fetch: { produces: ["untrusted"] }, send_email: { sink: "external" } },
  rules: [{ name: "no-exfil", when: { sink: "external", flows: ["untrusted"] }, verdict: "deny" }],
};

const PAGE =
  "Quarterly figures: revenue grew by eleven percent while the support backlog fell to its lowest level in two years.";

describe("Session flow index (made on the first labelled content)", () => {
  it("blocks a flow from output a session first sees after many decisions", async () => {
    const warden = Warden.fromObject(policy);
    const call = (body: string) => ({ tool: "send_email", session: "s", args: { to: "a@example.com", body } });
    for (let i = 0; i < 200; i++) {
      expect((await warden.decide(call(`note ${i}: ${PAGE}`))).verdict).toBe("allow");
    }
    warden.recordOutput({ tool: "web_fetch", session: "s" }, { page: PAGE });
    expect(await warden.decide(call(`fyi: ${PAGE.slice(20, 70)}`))).toMatchObject({
      verdict: "deny",
      rule: "no-exfil",
      labels: ["untrusted"],
    });
    // Another session of the same Warden holds no content: the same text flows nowhere there.
    expect((await warden.decide({ ...call(`fyi: ${PAGE.slice(20, 70)}`), session: "t" })).verdict).toBe(
      "allow",
    );
  });

  it("answers for no content until some is recorded, then finds it; again after a reset", () => {
    const session = new Session({ id: "s" });
    for (let round = 0; round < 2; round++) {
      expect(session.hasLabelledContent).toBe(false);
      expect(session.flowsInto({ body: PAGE })).toEqual([]);
      expect(session.endorsed(PAGE, ["user"])).toBe(false);
      session.input(PAGE, { labels: ["user"] });
      expect(session.hasLabelledContent).toBe(true);
      expect(session.endorsed(PAGE.slice(10, 60), ["user"])).toBe(true);
      expect(session.flowsInto({ body: PAGE.slice(10, 60) })).toMatchObject([
        { label: "user", source: "input#1", arg: "body" },
      ]);
      session.reset();
    }
  });

  it("fails closed on the store's overflow mark with no content recorded before it", () => {
    const session = new Session({ id: "s" });
    session.apply({ k: "o" }, 1);
    expect(session.hasLabelledContent).toBe(true);
  });

  it("refuses invalid flow options when the session is made, not at its first content", () => {
    expect(() => new Session({ id: "s", minMatch: 2 })).toThrow(RangeError);
    expect(() => new Session({ id: "s", labelMinMatch: { secret: 5000 } })).toThrow(RangeError);
    expect(() => new Session({ id: "s", maxTaintBytes: 0 })).toThrow(RangeError);
  });
});
