import { describe, expect, it } from "vitest";
import { Warden } from "../gateway/index.js";
import { ToolGuard } from "./guard.js";

/** Issue 18, item 7: every adapter can give the session the user's request (`input`) and task. */
describe("GuardOptions.input and task", () => {
  const policy = {
    version: 1,
    default: "allow",
    rules: [
      {
        name: "delete-not-asked",
        when: { tool: "delete_file", not: { user_asked: ["delet*"] } },
        verdict: "ask",
      },
      {
        name: "task-says-inbox",
        when: { tool: "tidy", expr: "session.task.contains('inbox')" },
        verdict: "flag",
      },
    ],
  };

  it("records the request once per session the adapter opens, labelled user", () => {
    const warden = Warden.fromObject(policy);
    const guard = new ToolGuard(warden, {
      session: "s1",
      input: "Please delete the old drafts",
      task: "tidy the inbox",
    });
    const session = guard.session();
    guard.session();
    expect(session.inputs).toEqual([{ text: "Please delete the old drafts", labels: ["user"] }]);
    expect(warden.evaluate(guard.call("delete_file", { path: "drafts" }, session)).verdict).toBe("allow");
    expect(warden.evaluate(guard.call("tidy", {}, session))).toMatchObject({
      verdict: "flag",
      rule: "task-says-inbox",
    });
  });

  it("without it, what the user asked for is unknown", () => {
    const warden = Warden.fromObject(policy);
    const guard = new ToolGuard(warden);
    const session = guard.session();
    expect(warden.evaluate(guard.call("delete_file", { path: "drafts" }, session))).toMatchObject({
      verdict: "ask",
      rule: "delete-not-asked",
    });
  });
});
