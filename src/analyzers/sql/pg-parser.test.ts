import { expect, it } from "vitest";
import type { Finding } from "../../core/index.js";
import { compilePolicyObject, compilePolicyObjectAsync } from "../../policy/index.js";
import { sqlKind } from "./index.js";

// This file must not load the parser before its first test: the module registry is per file.
const options = sqlKind.options.parse({ allow: ["select"], dialect: "postgresql" });

it("fails closed, saying why, when a synchronously compiled check runs before the parser has loaded", async () => {
  const check = sqlKind.compile(options);
  const out: Finding[] = [];
  check("SELECT 1", "query", out);
  expect(out).toEqual([
    { code: "sql.unparsable", arg: "query", message: expect.stringContaining("still loading") },
  ]);
  // The refusal is not cached: once loaded, the same query is decided on the real grammar.
  await sqlKind.load!(options);
  out.length = 0;
  check("SELECT 1", "query", out);
  expect(out).toEqual([]);
});

it("an asynchronously compiled policy decides its first call on the real grammar", async () => {
  const policy = {
    version: 1,
    default: "allow",
    tools: { q: { args: { sql: { sql: { allow: ["select"] } } } } },
  };
  expect(compilePolicyObject(policy).ready).toBeTypeOf("function");
  const compiled = await compilePolicyObjectAsync(policy);
  const out: Finding[] = [];
  compiled.tools.get("q")!.checks[0]!.check("SELECT current_user, session_user", "sql", out);
  expect(out).toEqual([]);
});
