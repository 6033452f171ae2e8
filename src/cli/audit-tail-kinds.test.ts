import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TEST_KEY, tempDir } from "../audit/fixtures/events.js";
import { JsonlAuditSink } from "../audit/jsonl-sink.js";
import { run } from "./audit.js";

let cleanup: () => Promise<void>;
let log: string;
beforeEach(async () => {
  let dir: string;
  ({ dir, cleanup } = await tempDir("tw-cli-audit-kinds-"));
  log = join(dir, "audit.jsonl");
  const sink = await JsonlAuditSink.open({ path: log, key: TEST_KEY });
  const time = "2026-12-06T20:00:00.000Z";
  await sink.append({ kind: "decision", time, tool: "write_file", verdict: "deny", rule: "deny:write_*" });
  await sink.append({
    kind: "pin",
    time,
    server: "fs",
    tool: "write_file",
    verdict: "allow",
    rule: "pin.first_use",
    reason: "pinned on first use",
  });
  await sink.append({
    kind: "approval",
    time,
    tool: "refund",
    approval: { id: "ap-1", status: "denied", by: "dana", reason: "not today" },
  });
  await sink.close();
});
afterEach(() => cleanup());

describe("audit tail shows each record kind for what it is", () => {
  it("never prints a pin or approval record as an allowed call", async () => {
    let stdout = "";
    const code = await run(["tail", log], {
      stdout: { write: (t: string) => (stdout += t) },
      stderr: { write: () => true },
      env: {},
    });
    expect(code).toBe(0);
    const [decision, pin, approval] = stdout.trim().split("\n");
    expect(decision).toMatch(/^#1 \S+ deny\s+write_file rule=deny:write_\*/);
    expect(pin).toMatch(/^#2 \S+ pin\s+write_file server=fs rule=pin\.first_use/);
    expect(pin).not.toMatch(/ allow /);
    expect(approval).toMatch(/^#3 \S+ approval refund approval=ap-1:denied by=dana reason="not today"/);
  });
});
