import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { JsonlAuditSink } from "../audit/jsonl-sink.js";
import { PolicyDeniedError } from "../core/index.js";
import { compilePolicyObject } from "../policy/index.js";
import { Warden } from "./warden.js";

const TOKEN = "ghp_Xq7Lm2Pz9Rt4Vw8Ky1Nb6Hc3Jd5Fg0aB1cD2";
const ENV = `APP_ENV=production\nGITHUB_TOKEN=${TOKEN}\nPORT=8080\n`;
const dir = mkdtempSync(join(tmpdir(), "tw-output-detect-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function warden(outputs: string, extra: Record<string, unknown> = {}) {
  return new Warden(
    compilePolicyObject({
      version: 1,
      default: "allow",
      tools: { send_email: { sink: "external" }, read_file: {}, ...extra },
      detect: { secrets: { args: "allow", outputs } },
      rules: [{ name: "no-secrets-out", when: { sink: "external", flows: ["secret"] }, verdict: "deny" }],
    }),
  );
}

describe("detect on tool outputs", () => {
  it("mask: the wrapped tool returns the masked output, the audit records that it was masked", async () => {
    const path = join(dir, "mask.jsonl");
    const w = new Warden(warden("mask").policy, {
      audit: await JsonlAuditSink.open({ path, unsigned: true, durability: "write" }),
    });
    const readFile = w.wrap("read_file", async (_args: { path: string }) => ({ path: ".env", text: ENV }));
    const result = await readFile({ path: ".env" });
    expect(result).toEqual({
      path: ".env",
      text: "APP_ENV=production\nGITHUB_TOKEN=[REDACTED]\nPORT=8080\n",
    });
    await w.close();
    const outputs = readFileSync(path, "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line))
      .filter((r) => r.kind === "output");
    expect(outputs).toEqual([
      expect.objectContaining({
        tool: "read_file",
        data: { detected: ["secret.github_token"], action: "masked" },
      }),
    ]);
    expect(readFileSync(path, "utf8")).not.toContain(TOKEN);
  });

  it("label: the output gets the `secret` label, so its flow into a sink is refused", async () => {
    const w = warden("label");
    const session = w.session({ id: "s-label" });
    const readFile = w.wrap("read_file", async (_args: { path: string }) => ENV);
    expect(await w.runInSession(session, () => readFile({ path: ".env" }))).toBe(ENV);
    expect([...session.seen]).toContain("secret");
    await w.flush("s-label");
    const decision = await w.decide({
      tool: "send_email",
      session: "s-label",
      args: { body: `fyi ${TOKEN}` },
    });
    expect(decision).toMatchObject({ verdict: "deny", rule: "no-secrets-out" });
  });

  it("deny: the output is withheld and the caller gets the refusal", async () => {
    const w = warden("deny");
    const readFile = w.wrap("read_file", async (_args: { path: string }) => ENV);
    const error = await readFile({ path: ".env" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PolicyDeniedError);
    expect((error as PolicyDeniedError).decision).toMatchObject({ verdict: "deny", rule: "detect.output" });
    expect((error as Error).message).not.toContain(TOKEN);
  });

  it("clean outputs pass unchanged (the same object), and a tool's own detect overrides the policy's", async () => {
    const w = warden("mask", { read_docs: { detect: { secrets: "allow" } } });
    const clean = { text: "nothing to see" };
    expect(await w.wrap("read_file", async () => clean)()).toBe(clean);
    expect(await w.wrap("read_docs", async () => ENV)()).toBe(ENV);
  });

  it("rejects an unknown output action and unknown detector options at load", () => {
    expect(() => compilePolicyObject({ version: 1, detect: { secrets: { outputs: "shred" } } })).toThrow(
      /`detect.secrets`/,
    );
    expect(() =>
      compilePolicyObject({ version: 1, detect: { secrets: { outputs: "mask", nope: 1 } } }),
    ).toThrow(/unknown `secrets` option `nope`/);
  });
});
