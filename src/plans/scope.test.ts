import { describe, expect, it } from "vitest";
import { PolicyDeniedError, ToolwardenError } from "../core/index.js";
import { Warden } from "../gateway/warden.js";

const policy = {
  version: 1,
  default: "deny",
  allow: ["read_file", "list_dir", "send_email", "http_get"],
  deny: ["delete_*"],
};

describe("scopes", () => {
  it.each([
    { call: { tool: "read_file", args: { path: "/tmp/a.txt" } }, rule: "allow:read_file" },
    { call: { tool: "list_dir", args: { path: "/tmp" } }, rule: "scope.resource" },
    { call: { tool: "read_file", args: { path: "/etc/passwd" } }, rule: "scope.resource" },
    { call: { tool: "read_file", args: { path: "/tmp/../etc/passwd" } }, rule: "scope.resource" },
    { call: { tool: "read_file", args: { path: ["/tmp/a", "/tmp/b"] } }, rule: "allow:read_file" },
    { call: { tool: "read_file", args: { path: ["/tmp/a", "/home/b"] } }, rule: "scope.resource" },
    { call: { tool: "read_file", args: { path: 42 } }, rule: "scope.resource" },
    { call: { tool: "read_file", args: {} }, rule: "allow:read_file" },
    { call: { tool: "http_get", args: { url: "https://api.example.com/v1/items" } }, rule: "allow:http_get" },
    {
      call: { tool: "http_get", args: { url: "https://api.example.com.evil.example/x" } },
      rule: "scope.resource",
    },
    { call: { tool: "send_email", args: { to: "a@b.c" } }, rule: "scope.tool" },
    // The scope narrows; it never widens what the policy denies.
    { call: { tool: "delete_tmp", args: { path: "/tmp/a" } }, rule: "deny:delete_*" },
  ])("$call.tool $call.args -> $rule", async ({ call, rule }) => {
    const warden = Warden.fromObject(policy);
    const spec = {
      task: "tidy /tmp",
      tools: ["read_file", "list_dir", "http_get", "delete_*"],
      resources: { path: "/tmp/*", url: ["https://api.example.com/*"] },
    };
    const decision = await warden.scope(spec, () => warden.decide(call));
    expect(decision.rule).toBe(rule);
    expect(decision.verdict).toBe(rule.startsWith("allow") ? "allow" : "deny");
    // The same call outside the scope is the policy's alone.
    const outside = await warden.decide(call);
    expect(outside.rule).not.toMatch(/^scope\./);
  });

  it("nests: an inner scope cannot widen the outer one", async () => {
    const warden = Warden.fromObject(policy);
    const decision = await warden.scope({ tools: ["read_*"] }, () =>
      warden.scope({ tools: ["read_*", "send_email"] }, () =>
        warden.decide({ tool: "send_email", args: { to: "x@y.z" } }),
      ),
    );
    expect(decision).toMatchObject({ verdict: "deny", rule: "scope.tool" });
    expect(decision.reason).toMatch(/outside this scope's tools \(read_\*\)/);
  });

  it("applies to wrapped tools and to evaluate", async () => {
    const warden = Warden.fromObject(policy);
    const send = warden.wrap("send_email", async (_: { to: string }) => "sent");
    await warden.scope({ tools: ["read_file"] }, async () => {
      await expect(send({ to: "x@y.z" })).rejects.toBeInstanceOf(PolicyDeniedError);
      expect(warden.evaluate({ tool: "send_email" })).toMatchObject({ verdict: "deny", rule: "scope.tool" });
    });
    await expect(send({ to: "x@y.z" })).resolves.toBe("sent");
  });

  it("refuses a bad glob when the scope starts", () => {
    const warden = Warden.fromObject(policy);
    expect(() => warden.scope({ tools: ["read_[file"] }, () => 1)).toThrow(ToolwardenError);
    expect(() => warden.scope({ resources: { path: [] } }, () => 1)).toThrow(/at least one glob/);
  });
});
