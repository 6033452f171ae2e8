import { compileShadowCheck } from "../../analyzers/identity/index.js";
import type { Finding } from "../../core/index.js";
import { fingerprintChanges, fingerprintTool } from "./pins.js";
import type { PinEntry, PinLedger } from "./pins.js";
import { assessTool } from "./risk.js";
import type { ListedTool } from "./risk.js";

/** How a server's tools are pinned (from the policy's `servers.<id>`). */
export interface PinRules {
  /** Verdict for a tool that fails its pin. Default deny. */
  verdict: "deny" | "ask";
  /** `pin`: trust on first use; `approve`: only `toolwarden mcp pins approve` pins. Default pin. */
  firstUse: "pin" | "approve";
}

/** The result of checking one listed tool against the ledger. */
export type PinStatus =
  | { ok: true; pin?: PinEntry; pinnedNow: boolean }
  | { ok: false; verdict: "deny" | "ask"; finding: Finding; pin?: PinEntry };

/** A pin event for the audit trail (`kind: "pin"`). */
export interface PinEvent {
  server: string;
  tool: string;
  verdict: "allow" | "ask" | "deny";
  rule: string;
  reason: string;
  findings?: Finding[];
  /** `false`: observed, not enforced (the Warden observes): the call went on. */
  enforced?: false;
  data: Record<string, unknown>;
}

/**
 * Checks the tools one server lists against the pin ledger:
 * - a pinned tool must match its fingerprint (else `pin.changed`: a rug pull);
 * - an unpinned tool must not take a name pinned on another server (`pin.shadowing`), look like
 *   any pinned name (`tool.shadowing`, `tool.hidden_characters`), or carry instructions to the
 *   model or hidden characters in its description (`pin.suspicious`);
 * - otherwise it is pinned on first use (`first_use: pin`), or waits for approval (`pin.unapproved`).
 * Each violation is reported once per fingerprint, so a client listing tools again does not flood
 * the audit trail.
 */
export async function reviewTools(
  ledger: PinLedger,
  server: string,
  tools: readonly ListedTool[],
  rules: PinRules,
  report: (event: PinEvent) => Promise<void>,
  reported: Set<string> = new Set(),
): Promise<Map<string, PinStatus>> {
  await ledger.refresh();
  const statuses = new Map<string, PinStatus>();
  const pinned = ledger.list();
  const elsewhere = new Map<string, string>();
  for (const pin of pinned)
    if (pin.server !== server && !elsewhere.has(pin.tool)) elsewhere.set(pin.tool, pin.server);
  const lookAlike = compileShadowCheck([...new Set(pinned.map((pin) => pin.tool))]);
  const toPin: ListedTool[] = [];
  const events: PinEvent[] = [];

  for (const tool of tools) {
    const fp = fingerprintTool(server, tool);
    const pin = ledger.get(server, tool.name);
    const violation = (code: string, message: string, data: Record<string, unknown> = {}) => {
      const finding: Finding = { code, message, verdict: rules.verdict };
      statuses.set(tool.name, { ok: false, verdict: rules.verdict, finding, pin });
      const once = `${code}\u0000${tool.name}\u0000${fp.schemaHash}\u0000${fp.descriptionHash}`;
      if (reported.has(once)) return;
      reported.add(once);
      events.push({
        server,
        tool: tool.name,
        verdict: rules.verdict,
        rule: code,
        reason: message,
        findings: [finding],
        data: { ...data, schemaHash: fp.schemaHash, descriptionHash: fp.descriptionHash },
      });
    };
    if (pin) {
      const changes = fingerprintChanges(pin, fp);
      if (changes.length === 0) statuses.set(tool.name, { ok: true, pin, pinnedNow: false });
      else {
        violation(
          "pin.changed",
          `tool \`${tool.name}\` on server \`${server}\` changed its ${changes.join(" and ")} since it was pinned (possible rug pull)`,
          {
            changed: changes,
            pinnedSeq: pin.seq,
            description: tool.description,
          },
        );
      }
      continue;
    }
    const other = elsewhere.get(tool.name);
    if (other !== undefined) {
      violation(
        "pin.shadowing",
        `tool \`${tool.name}\` on server \`${server}\` shadows the tool of that name pinned on server \`${other}\``,
        {
          shadows: other,
        },
      );
      continue;
    }
    const alike = lookAlike(tool.name);
    if (alike) {
      violation(
        alike.code,
        `${alike.message.replace("declared tool", "pinned tool")} (server \`${server}\`)`,
      );
      continue;
    }
    const risk = assessTool(tool).findings.filter((f) => f.severity === "high");
    if (risk.length) {
      violation(
        "pin.suspicious",
        `tool \`${tool.name}\` on server \`${server}\` is not pinned: ${risk.map((f) => f.message).join("; ")}`,
        {
          risk: risk.map((f) => f.code),
          description: tool.description,
        },
      );
      continue;
    }
    if (rules.firstUse === "approve") {
      violation(
        "pin.unapproved",
        `tool \`${tool.name}\` on server \`${server}\` is not pinned; approve it with \`toolwarden mcp pins approve\``,
      );
      continue;
    }
    toPin.push(tool);
  }

  if (toPin.length) {
    const written = await ledger.pin(
      toPin.map((tool) => ({ server, tool })),
      "first-use",
    );
    for (const tool of toPin) {
      const pin = ledger.get(server, tool.name);
      if (pin) statuses.set(tool.name, { ok: true, pin, pinnedNow: true });
    }
    for (const entry of written) {
      events.push({
        server,
        tool: entry.tool,
        verdict: "allow",
        rule: "pin.first_use",
        reason: `tool \`${entry.tool}\` on server \`${server}\` pinned on first use`,
        data: { seq: entry.seq, schemaHash: entry.schemaHash, descriptionHash: entry.descriptionHash },
      });
    }
  }
  for (const event of events) await report(event);
  return statuses;
}
