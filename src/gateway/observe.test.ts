import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { JsonlAuditSink } from "../audit/jsonl-sink.js";
import { PolicyDeniedError } from "../core/index.js";
import { compilePolicyObject } from "../policy/index.js";
import { Warden } from "./warden.js";

const base = {
  version: 1,
  default: "deny",
  allow: ["read_*", "send_email", "fetch"],
  tools: { fetch: { args: { url: { url: { hosts: ["docs.example.com"] } } } } },
  rules: [
    { name: "no-mail-to-evil", when: { tool: "send_email", "args.to": { regex: "evil" } }, verdict: "deny" },
  ],
} as const;

async function auditedWarden(policy: object, options: { observe?: boolean } = {}) {
  const path = join(mkdtempSync(join(tmpdir(), "tw-observe-")), "audit.jsonl");
  const audit = await JsonlAuditSink.open({ path, key: "k".repeat(32), durability: "write" });
  const warden = new Warden(compilePolicyObject(policy), { audit, ...options });
  const records = async () => {
    await audit.flush();
    return readFileSync(path, "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
  };
  return { warden, records };
}

describe("observe mode", () => {
  it("mode: observe keeps the would-be verdict, marks it unenforced, audits it in full, and lets the call run", async () => {
    const { warden, records } = await auditedWarden({ ...base, mode: "observe" });
    const decision = await warden.decide({
      tool: "fetch",
      args: { url: "https://evil.example/x" },
      session: "s",
    });
    expect(decision).toMatchObject({ verdict: "deny", rule: "url.host_not_allowed", enforced: false });
    expect(decision.findings.map((f) => f.code)).toEqual(["url.host_not_allowed"]);
    // enforce and wrap do not refuse it.
    await expect(warden.enforce({ tool: "delete_all", args: {}, session: "s" })).resolves.toMatchObject({
      verdict: "deny",
      rule: null,
      enforced: false,
    });
    let ran = 0;
    const wrapped = warden.wrap("send_email", (_: { to: string }) => ++ran);
    await warden.runInSession(warden.session({ id: "s" }), () => wrapped({ to: "x@evil.example" }));
    expect(ran).toBe(1);
    // An allowed call carries no mark.
    const allowed = await warden.decide({ tool: "read_file", args: {}, session: "s" });
    expect(allowed.enforced).toBeUndefined();
    const audited = await records();
    expect(audited.map((r) => [r.tool, r.verdict, r.enforced])).toEqual([
      ["fetch", "deny", false],
      ["delete_all", "deny", false],
      ["send_email", "deny", false],
      ["read_file", "allow", undefined],
    ]);
    expect(audited[0].findings[0].code).toBe("url.host_not_allowed");
    await warden.close();
  });

  it("an observed ask opens no approval and is not counted", async () => {
    const warden = new Warden(
      compilePolicyObject({
        ...base,
        mode: "observe",
        ask: ["refund"],
        limits: [{ name: "one-refund", when: { tool: "refund" }, max: 1, per: "session" }],
      }),
    );
    const first = await warden.decide({ tool: "refund", args: {}, session: "s" });
    expect(first).toMatchObject({ verdict: "ask", enforced: false });
    expect(first.approval).toBeUndefined();
    expect(await warden.store.listApprovals({ status: "pending" })).toEqual([]);
    // Had the asks been counted, the limit would now deny.
    expect((await warden.decide({ tool: "refund", args: {}, session: "s" })).rule).toBe("ask:refund");
    await warden.close();
  });

  it("enforce: false on a rule observes it; an enforced contribution still decides", async () => {
    const policy = {
      ...base,
      default: "allow",
      ask: ["send_email"],
      rules: [
        {
          name: "no-mail-to-evil",
          when: { tool: "send_email", "args.to": { regex: "evil" } },
          verdict: "deny",
          enforce: false,
        },
        {
          name: "no-drop",
          when: { tool: "run_sql", "args.q": { regex: "DROP" } },
          verdict: "deny",
          enforce: false,
        },
      ],
    };
    const warden = new Warden(compilePolicyObject(policy));
    // The rule is observed, the ask of the shorthand is enforced: ask decides, the rule is listed.
    const mail = warden.evaluate({ tool: "send_email", args: { to: "a@evil.example" } });
    expect(mail).toMatchObject({ verdict: "ask", rule: "ask:send_email", observed: ["no-mail-to-evil"] });
    expect(mail.enforced).toBeUndefined();
    // Nothing enforced is left: the would-be deny proceeds.
    const sql = warden.evaluate({ tool: "run_sql", args: { q: "DROP TABLE x" } });
    expect(sql).toMatchObject({ verdict: "deny", rule: "no-drop", enforced: false, observed: ["no-drop"] });
    await expect(warden.enforce({ tool: "run_sql", args: { q: "DROP TABLE x" } })).resolves.toBeTruthy();
  });

  it("enforce: false on a tool observes every decision on it, and only it", async () => {
    const policy = {
      ...base,
      tools: { fetch: { enforce: false, args: { url: { url: { hosts: ["docs.example.com"] } } } } },
    };
    const warden = new Warden(compilePolicyObject(policy));
    expect(warden.evaluate({ tool: "fetch", args: { url: "https://evil.example/" } })).toMatchObject({
      verdict: "deny",
      enforced: false,
    });
    await expect(
      warden.enforce({ tool: "send_email", args: { to: "a@evil.example" } }),
    ).rejects.toBeInstanceOf(PolicyDeniedError);
  });

  it("enforce: false on a limit: it counts as if enforced, a trip is audited and the call goes on", async () => {
    const policy = {
      ...base,
      limits: [{ name: "two-reads", when: { tool: "read_*" }, max: 2, per: "session", enforce: false }],
    };
    const warden = new Warden(compilePolicyObject(policy));
    const verdicts = [];
    for (let i = 0; i < 3; i++)
      verdicts.push(await warden.enforce({ tool: "read_file", args: {}, session: "s" }));
    expect(verdicts.map((d) => [d.verdict, d.rule, d.enforced])).toEqual([
      ["allow", "allow:read_*", undefined],
      ["allow", "allow:read_*", undefined],
      ["deny", "two-reads", false],
    ]);
  });

  it("the Warden's observe option (serve --observe, mcp proxy --observe) overrides mode: enforce", async () => {
    const { warden, records } = await auditedWarden(base, { observe: true });
    expect(warden.observing).toBe(true);
    await expect(warden.enforce({ tool: "delete_all", args: {}, session: "s" })).resolves.toMatchObject({
      verdict: "deny",
      enforced: false,
    });
    expect((await records())[0]).toMatchObject({ verdict: "deny", enforced: false });
    await warden.close();
  });

  it("a malformed call is refused even when observing", async () => {
    const warden = new Warden(compilePolicyObject({ ...base, mode: "observe" }));
    const decision = await warden.decide({ tool: "", args: {} });
    expect(decision.rule).toBe("malformed-call");
    expect(decision.enforced).toBeUndefined();
  });
});
