import { describe, expect, it } from "vitest";
import { Warden } from "../gateway/index.js";
import { compilePolicyObject } from "../policy/index.js";
import { guardToolUses } from "./anthropic/index.js";
import { guardToolCalls } from "./openai/index.js";

const POLICY = {
  version: 1,
  mode: "observe",
  default: "deny",
  allow: ["read_file"],
  tools: { read_file: { args: { path: { path: { within: ["/srv/kb"] } } } } },
};

describe("SDK adapters honour observe mode", () => {
  it("OpenAI tool calls: a would-be denial runs, and its decision says so", async () => {
    let ran = 0;
    const tools = guardToolCalls(new Warden(compilePolicyObject(POLICY)), {
      read_file: () => {
        ran++;
        return "root:x:0:0";
      },
    });
    const [message] = await tools.chat([
      { id: "c1", type: "function", function: { name: "read_file", arguments: '{"path":"/etc/passwd"}' } },
    ]);
    expect(ran).toBe(1);
    expect(message.content).toBe("root:x:0:0");
    expect(tools.results[0].decision).toMatchObject({
      verdict: "deny",
      rule: "path.outside",
      enforced: false,
    });
  });

  it("Anthropic tool uses: the same", async () => {
    let ran = 0;
    const tools = guardToolUses(new Warden(compilePolicyObject(POLICY)), {
      delete_all: () => {
        ran++;
        return "done";
      },
    });
    const [result] = await tools.toolResults([{ type: "tool_use", id: "t1", name: "delete_all", input: {} }]);
    expect(ran).toBe(1);
    expect(result.is_error ?? false).toBe(false);
    expect(tools.decisions.get("t1")).toMatchObject({ verdict: "deny", enforced: false });
  });
});
