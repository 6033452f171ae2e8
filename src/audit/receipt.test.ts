import { describe, expect, it } from "vitest";
import { GENESIS, sealRecord } from "./chain.js";
import { shareReceipt } from "./receipt.js";
import type { AuditEvent } from "./types.js";

function record(event: Partial<AuditEvent>) {
  return sealRecord(
    { kind: "decision", time: "2025-03-01T10:00:00.000Z", ...event },
    GENESIS,
    Buffer.from("k".repeat(32)),
  ).record;
}

describe("shareReceipt", () => {
  it("summarises a denied call without its arguments", () => {
    const r = record({
      tool: "send_email",
      server: "mail",
      verdict: "deny",
      rule: "no-untrusted-into-external-sinks",
      policy: "support-bot",
      reason: "Untrusted content may not reach an external sink.",
      findings: [{ code: "secret.aws_key", message: "AKIAABCDEFGHIJKLMNOP in body", arg: "body" }],
      labels: ["untrusted"],
      agent: "bot-1",
      session: "s-42",
      argsHash: "ab".repeat(32),
      args: { body: "AKIAABCDEFGHIJKLMNOP" },
    });
    const text = shareReceipt(r);
    expect(text).toBe(`### toolwarden: call denied

| | |
|---|---|
| Verdict | **\`deny\`** |
| Tool | \`send_email\` on server \`mail\` |
| Policy | \`support-bot\` |
| Rule | \`no-untrusted-into-external-sinks\` |
| Reason | \`Untrusted content may not reach an external sink.\` |
| Findings | \`secret.aws_key\` in \`body\` |
| Labels | \`untrusted\` |
| Agent | \`bot-1\` |
| Session | \`s-42\` |
| Time | \`2025-03-01T10:00:00.000Z\` |
| Arguments | not shown; sha256 \`${"ab".repeat(32)}\` |
| Audit record | seq \`1\`, hash \`${r.hash}\` |

_Check it against the signed log with \`toolwarden audit verify\`._
`);
    expect(text).not.toContain("AKIA");
  });

  it.each([
    ["a backtick breaking out of the code span", "x`](http://evil)`", "`x'](http://evil)'`"],
    ["a pipe breaking the table", "a|b", "`a\\|b`"],
    ["newlines adding rows", "a\n| Verdict | allow |", "`a \\| Verdict \\| allow \\|`"],
    ["html", "<img src=x onerror=alert(1)>", "`<img src=x onerror=alert(1)>`"],
    ["bidi overrides", "abc\u202Egnp.exe", "`abc gnp.exe`"],
  ])("neutralises %s in a hostile tool name", (_name, tool, rendered) => {
    const text = shareReceipt(record({ tool, verdict: "flag" }));
    expect(text).toContain(`| Tool | ${rendered} |`);
    expect(text.split("\n").filter((l) => l.startsWith("|"))).toHaveLength(6);
  });

  it("masks secrets in the reason and caps its length", () => {
    const text = shareReceipt(
      record({ verdict: "ask", reason: `token AKIAABCDEFGHIJKLMNOP ${"x".repeat(600)}` }),
      {
        redactSecrets: (s) => s.replace(/AKIA\w+/g, "[secret]"),
      },
    );
    expect(text).toContain("call held for approval");
    expect(text).toContain("`token [secret] xxx");
    expect(text).toMatch(/x…` \|/);
    expect(text).not.toContain("AKIA");
  });

  it("shows the approval and the default rule", () => {
    const text = shareReceipt(
      record({ verdict: "deny", rule: null, approval: { id: "ap-1", status: "denied", by: "alice" } }),
    );
    expect(text).toContain("| Rule | default |");
    expect(text).toContain("| Approval | `ap-1`: `denied` by `alice` |");
  });
});
