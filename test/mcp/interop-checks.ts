import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { text, until } from "./helpers.js";
import type { AnyClient } from "./helpers.js";

/** The policy every interop case runs under: one denied tool, one denied resource, labelled reads. */
export const INTEROP_POLICY = `version: 1
default: allow
deny: [huge]
tools:
  resources/read: { produces: [private] }
rules:
  - name: no-secret-notes
    when: { tool: resources/read, args.uri: { prefix: "notes://secret" } }
    verdict: deny
    message: Secret notes stay closed.
`;

/** The matrix: which client generation talks to which server generation, through toolwarden. */
export const MATRIX = [
  { client: "v1", server: "v2", legacy: "serve", era: "legacy", elicits: "asked:deploy" },
  // A 2025 server asks with a server-to-client request, which a 2026 client has no channel for.
  { client: "v2", server: "v1", legacy: "serve", era: "modern", elicits: null },
  { client: "v2", server: "v2", legacy: "reject", era: "modern", elicits: "asked:deploy" },
] as const;

/** The checks every cell of the matrix passes, through the proxy and through the gateway. */
export function interopChecks(
  connect: () => { client: () => AnyClient; tool: (name: string) => string; log: string },
  era: string,
  elicits: string | null,
) {
  it("negotiates the client's newest protocol", () => {
    expect(connect().client().era()).toBe(era);
  });

  it("round-trips an allowed call and a structured result", async () => {
    const { client, tool } = connect();
    expect(text(await client().callTool({ name: tool("echo"), arguments: { message: "hi" } }))).toBe(
      "echo: hi",
    );
    const added = await client().callTool({ name: tool("add"), arguments: { a: 2, b: 40 } });
    expect(added.structuredContent).toEqual({ sum: 42 });
    expect(text(added)).toBe("42");
  });

  it("refuses a denied call with the reason, and keeps serving", async () => {
    const { client, tool } = connect();
    const denied = await client().callTool({ name: tool("huge"), arguments: { bytes: 10 } });
    expect(denied.isError).toBe(true);
    expect(text(denied)).toBe(
      "toolwarden denied `huge` (rule `deny:huge`): `huge` is on the deny list. The call was not run.",
    );
    expect(denied._meta?.["toolwarden/decision"]).toMatchObject({ verdict: "deny", rule: "deny:huge" });
    expect(text(await client().callTool({ name: tool("echo"), arguments: { message: "again" } }))).toBe(
      "echo: again",
    );
  });

  it("relays progress under the caller's token", async () => {
    const { client, tool } = connect();
    const progress: number[] = [];
    const result = await client().callTool(
      { name: tool("slow"), arguments: { steps: 5 } },
      { onprogress: (p) => progress.push(p.progress) },
    );
    expect(text(result)).toBe("done after 5 steps");
    // A client handles an answer that arrives in the same read as the last notifications first and
    // drops those (on a loaded machine the last 50 ms gaps can close): require the first two, in order.
    expect(progress.slice(0, 2)).toEqual([1, 2]);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
  });

  it("relays cancellation to the server", async () => {
    const { client, tool, log } = connect();
    const abort = new AbortController();
    const call = client().callTool(
      { name: tool("slow"), arguments: { steps: 100 } },
      {
        signal: abort.signal,
        onprogress: (p) => {
          if (p.progress >= 2) abort.abort();
        },
      },
    );
    await expect(call).rejects.toThrow();
    await until(() => readLog(log).includes("cancelled"), "the server to see the cancellation");
  });

  it("passes the server's question to the user through (2026 input_required, or a 2025 request)", async () => {
    const { client, tool } = connect();
    const call = client().callTool({ name: tool("confirm"), arguments: { action: "deploy" } });
    if (elicits) {
      expect(text(await call)).toBe(`confirmed deploy (${elicits})`);
    } else {
      // Not relayed: the call still ends (an error, or the server's answer to a declined question).
      const outcome = await call.then(text, (error: Error) => error.message);
      expect(outcome).not.toMatch(/^confirmed/);
    }
  });

  it("reads resources and prompts under the policy", async () => {
    const { client, tool } = connect();
    const read = await client().readResource("notes://readme");
    expect(read.contents[0]).toMatchObject({ uri: "notes://readme", text: "Read me first." });
    await expect(client().readResource("notes://secret")).rejects.toThrow(
      /toolwarden denied `resources\/read` \(rule `no-secret-notes`\): Secret notes stay closed\. The call was not run\./,
    );
    const prompt = await client().getPrompt(tool("greet"), { name: "Ada" });
    expect(JSON.stringify(prompt.messages)).toContain("Say hello to Ada.");
  });
}

function readLog(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}
