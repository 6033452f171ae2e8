import { describe, expect, it } from "vitest";
import { Warden } from "../../gateway/warden.js";
import { guardToolUses } from "./index.js";

const policy = { version: 1, default: "deny", allow: ["lookup_order", "ghost"] };

describe("guardToolUses", () => {
  it("answers a tool_use for a tool the host does not have with an error result, decided and not thrown", async () => {
    const tools = guardToolUses(Warden.fromObject(policy), {
      lookup_order: (input) => ({ order: (input as { id: string }).id }),
    });
    const results = await tools.toolResults([
      { type: "tool_use", id: "u1", name: "ghost", input: {} },
      { type: "tool_use", id: "u2", name: "drop_table", input: {} },
      { type: "tool_use", id: "u3", name: "lookup_order", input: { id: "A-1" } },
    ] as never);
    expect(results).toEqual([
      {
        type: "tool_result",
        tool_use_id: "u1",
        content: "there is no tool `ghost`; the tools are `lookup_order`. The call was not run.",
        is_error: true,
      },
      {
        type: "tool_result",
        tool_use_id: "u2",
        content: "toolwarden denied `drop_table`: no rule matched `drop_table`; the default is deny. The call was not run.",
        is_error: true,
      },
      { type: "tool_result", tool_use_id: "u3", content: '{"order":"A-1"}' },
    ]);
    expect([...tools.decisions.values()].map((d) => d.verdict)).toEqual(["allow", "deny", "allow"]);
  });
});
