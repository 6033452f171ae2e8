import { describe, expect, it } from "vitest";
import { PolicyDeniedError } from "../core/index.js";
import { Warden } from "./warden.js";

const policy = {
  version: 1,
  default: "deny",
  allow: ["web_fetch", "refund", "copy", "send_email", "lookup"],
  tools: {
    web_fetch: { args: { url: { url: { private: "block", schemes: ["https"] } } } },
    copy: { args: { from: { path: { within: ["/workspace"] } }, to: { path: { within: ["/workspace"] } } } },
    send_email: { args: { to: { required: true, regex: "@corp\\.example$" } } },
  },
  rules: [{ name: "big-refunds", when: { tool: "refund", "args.amount": { gt: 100 } }, verdict: "deny" }],
};

const METADATA = "http://169.254.169.254/latest/meta-data";

describe("wrap with positional arguments is safe by default", () => {
  it("maps a lone positional argument to the one argument the policy declares", async () => {
    const warden = Warden.fromObject(policy);
    let ran = 0;
    const fetchPage = warden.wrap("web_fetch", async (u: string) => {
      ran++;
      return u;
    });
    await expect(fetchPage(METADATA)).rejects.toBeInstanceOf(PolicyDeniedError);
    expect(ran).toBe(0);
    await expect(fetchPage("https://example.com/")).resolves.toBe("https://example.com/");
  });

  it("names positional arguments by the function's own parameter names", async () => {
    const warden = Warden.fromObject(policy);
    const refund = warden.wrap("refund", async (amount: number, note: string) => `${amount} ${note}`);
    await expect(refund(500, "x")).rejects.toBeInstanceOf(PolicyDeniedError);
    await expect(refund(5, "x")).resolves.toBe("5 x");
    const copy = warden.wrap("copy", (from: string, to: string) => `${from}->${to}`);
    await expect(copy("/workspace/a", "/etc/passwd")).rejects.toBeInstanceOf(PolicyDeniedError);
    await expect(copy("/workspace/a", "/workspace/b")).resolves.toBe("/workspace/a->/workspace/b");
  });

  it("refuses at wrap time a function whose parameters cannot be matched to the declared arguments", () => {
    const warden = Warden.fromObject(policy);
    expect(() => warden.wrap("copy", (a: string, b: string) => a + b)).toThrow(/params/);
    // With `params` it is fine, and the names are used.
    const copy = warden.wrap("copy", (a: string, b: string) => a + b, { params: ["from", "to"] });
    return expect(copy("/workspace/a", "/tmp/b")).rejects.toBeInstanceOf(PolicyDeniedError);
  });

  it("denies, never passes unchecked, positional values it cannot name", async () => {
    const warden = Warden.fromObject(policy);
    let ran = 0;
    // A function whose parameter names cannot be read (bound) and which is called positionally.
    const lookup = warden.wrap(
      "lookup",
      function (this: unknown, ...values: unknown[]) {
        ran++;
        return values;
      }.bind(null),
    );
    const refused = await lookup("a", "b").catch((e) => e);
    expect(refused).toBeInstanceOf(PolicyDeniedError);
    expect((refused as PolicyDeniedError).decision.rule).toBe("wrap.unnamed_args");
    expect(ran).toBe(0);
    // The object form still works for such a function.
    await expect(lookup({ id: 1 })).resolves.toEqual([{ id: 1 }]);
  });

  it("keeps the object form: one plain object is the args", async () => {
    const warden = Warden.fromObject(policy);
    const fetchPage = warden.wrap("web_fetch", async ({ url }: { url: string }) => url);
    await expect(fetchPage({ url: METADATA })).rejects.toBeInstanceOf(PolicyDeniedError);
    await expect(fetchPage({ url: "https://example.com/" })).resolves.toBe("https://example.com/");
  });
});

describe("required: true", () => {
  it("denies a call without a required argument, with a reason", () => {
    const warden = Warden.fromObject(policy);
    const missing = warden.evaluate({ tool: "send_email", args: { body: "hi" } });
    expect(missing.verdict).toBe("deny");
    expect(missing.rule).toBe("arg.missing");
    expect(missing.reason).toMatch(/`to`/);
    expect(warden.evaluate({ tool: "send_email", args: { to: "a@corp.example" } }).verdict).toBe("allow");
    expect(warden.evaluate({ tool: "send_email", args: { to: "a@evil.example" } }).verdict).toBe("deny");
  });

  it("an absent argument without `required` passes its constraints (documented)", () => {
    const warden = Warden.fromObject(policy);
    expect(warden.evaluate({ tool: "web_fetch", args: {} }).verdict).toBe("allow");
  });

  it("rejects a non-boolean `required`", () => {
    expect(() =>
      Warden.fromObject({ version: 1, tools: { t: { args: { a: { required: "yes" } } } } }),
    ).toThrow(/required/);
  });
});

describe("evaluate never throws", () => {
  it.each([undefined, null, 42, "web_fetch", [] as unknown])("denies %s as a malformed call", (call) => {
    const warden = Warden.fromObject(policy);
    const decision = warden.evaluate(call as never);
    expect(decision.verdict).toBe("deny");
    expect(decision.rule).toBe("malformed-call");
  });
});
