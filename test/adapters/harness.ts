import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import { JsonlAuditSink } from "../../src/audit/jsonl-sink.js";
import type { AuditRecord } from "../../src/audit/types.js";
import { Warden } from "../../src/index.js";
import { FINAL_ANSWER, UNTRUSTED_PAGE } from "./script.js";

/** The one policy every adapter test runs under. */
export const POLICY = fileURLToPath(new URL("./policy.yaml", import.meta.url));

export interface E2E {
  warden: Warden;
  auditPath: string;
  /** Closes the Warden (flushing the audit) and returns the audit records. */
  audit(): Promise<AuditRecord[]>;
  cleanup(): Promise<void>;
}

/** A Warden on the shared policy with a JSONL audit log in a fresh temporary directory. */
export async function e2eWarden(): Promise<E2E> {
  const dir = await mkdtemp(join(tmpdir(), "tw-adapters-"));
  const auditPath = join(dir, "audit.jsonl");
  const warden = Warden.fromFile(POLICY, {
    audit: await JsonlAuditSink.open({ path: auditPath, unsigned: true, durability: "write" }),
  });
  let closed = false;
  return {
    warden,
    auditPath,
    async audit() {
      if (!closed) await warden.close();
      closed = true;
      const text = await readFile(auditPath, "utf8");
      return text
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line) as AuditRecord);
    },
    async cleanup() {
      if (!closed) await warden.close();
      closed = true;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The host's real tools: they record what ran; `web_fetch` returns a page with a prompt injection. */
export function hostTools() {
  const ran: Array<{ tool: string; args: unknown }> = [];
  return {
    ran,
    web_fetch: async (args: { url: string }) => {
      ran.push({ tool: "web_fetch", args });
      return UNTRUSTED_PAGE;
    },
    delete_records: async (args: { table: string }) => {
      ran.push({ tool: "delete_records", args });
      return `deleted every row of ${args.table}`;
    },
    send_email: async (args: { to: string; subject: string; body: string }) => {
      ran.push({ tool: "send_email", args });
      return `sent to ${args.to}`;
    },
    refund: async (args: { order: string; amount: number }) => {
      ran.push({ tool: "refund", args });
      return `refunded ${args.amount} on ${args.order}`;
    },
  };
}

/**
 * What every scripted run must show: only `web_fetch` ran; the model read each refusal and its
 * reason in the request after the refused call; the loop ended with the final answer; the audit
 * holds the three decisions, in order, in one session.
 */
export function expectScriptedRun(options: {
  ran: Array<{ tool: string }>;
  /** The tool-result texts of each request the model received, in order. */
  resultsPerRequest: string[][];
  finalText: string | undefined;
  records: AuditRecord[];
}): { session: string } {
  const { ran, resultsPerRequest, finalText, records } = options;
  expect(ran.map((r) => r.tool)).toEqual(["web_fetch"]);
  expect(resultsPerRequest).toHaveLength(4);
  const [, second, third, fourth] = resultsPerRequest;
  expect(second).toEqual([UNTRUSTED_PAGE]);
  expect(third[1]).toContain("denied `delete_records`");
  expect(third[1]).toContain("`delete_*` is on the deny list");
  expect(fourth[2]).toContain("denied `send_email`");
  expect(fourth[2]).toContain("Untrusted content may not reach an external sink.");
  expect(finalText).toBe(FINAL_ANSWER);

  const decisions = records.filter((r) => r.kind === "decision");
  expect(decisions.map((d) => [d.tool, d.verdict, d.rule])).toEqual([
    ["web_fetch", "allow", "allow:web_fetch"],
    ["delete_records", "deny", "deny:delete_*"],
    ["send_email", "deny", "no-untrusted-into-external-sinks"],
  ]);
  expect(decisions[2].labels).toEqual(["untrusted"]);
  expect(decisions[2].flows?.filter((f) => f.label === "untrusted").map((f) => f.arg)).toContain("body");
  const sessions = new Set(decisions.map((d) => d.session));
  expect(sessions.size).toBe(1);
  const [session] = sessions;
  expect(session).toEqual(expect.any(String));
  return { session: session as string };
}
