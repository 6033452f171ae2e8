import { describe, expect, it } from "vitest";
import { TokenTable } from "./auth.js";

describe("TokenTable", () => {
  const table = new TokenTable([
    { token: "alice-token-0123456789", agent: { id: "alice", role: "admin" } },
    { token: "bob-token-0123456789", agent: { id: "bob" } },
  ]);
  const cases: Array<[string, string | undefined, string | undefined]> = [
    ["alice's token", "Bearer alice-token-0123456789", "alice"],
    ["bob's token, lower-case scheme", "bearer bob-token-0123456789", "bob"],
    ["no header", undefined, undefined],
    ["an empty header", "", undefined],
    ["a wrong token", "Bearer alice-token-0123456780", undefined],
    ["a prefix of a token", "Bearer alice-token", undefined],
    ["a token with a suffix", "Bearer alice-token-0123456789x", undefined],
    ["basic auth", "Basic YWxpY2U6eA==", undefined],
    ["two tokens", "Bearer alice-token-0123456789 bob-token-0123456789", undefined],
  ];
  it.each(cases)("%s", (_, header, agent) => {
    expect(table.match(header)?.agent.id).toBe(agent);
  });

  it("tells tokens apart by index (sessions are bound to it)", () => {
    expect(table.match("Bearer bob-token-0123456789")).toEqual({ index: 1, agent: { id: "bob" } });
  });
});
