import type { Client } from "@modelcontextprotocol/client";
import type { Warden } from "../../gateway/index.js";
import { listAllTools } from "./approve.js";
import { reviewTools } from "./pin-check.js";
import type { PinEvent, PinRules, PinStatus } from "./pin-check.js";
import type { PinLedger } from "./pins.js";
import type { ListedTool } from "./risk.js";

/** The pin rules of a server, read from the policy's `servers.<id>` (defaults: deny, pin on first use). */
export function pinRules(warden: Warden, server: string): PinRules {
  const spec = warden.policy.loaded.policy.servers?.[server];
  return { verdict: spec?.pins ?? "deny", firstUse: spec?.first_use ?? "pin" };
}

/** Writes a pin event to the warden's audit trail. */
export function auditPin(
  warden: Warden,
  event: PinEvent & { session?: string; agent?: string },
): Promise<void> {
  return warden.appendAudit({ kind: "pin", ...event });
}

/**
 * The tools of one upstream server as the client may see them: every page of `tools/list`, each
 * tool checked against the pin ledger. A tool that fails its pin is hidden (verdict deny) or shown
 * as it was pinned (verdict ask: the model reads the approved description, not the new one).
 */
/**
 * Whether every call of `tool` on `server` is denied whatever its arguments and session: a
 * `deny:` list entry matches it, or nothing but deny rules can match it under `default: deny`
 * (and no engine or judge could decide otherwise, and the policy enforces).
 */
export function deniedOutright(warden: Warden, server: string, tool: string): boolean {
  const policy = warden.policy;
  if (policy.engines?.length || policy.judge?.undecided) return false;
  const decision = warden.evaluate({ tool, server, args: {} });
  if (decision.verdict !== "deny" || (decision as { enforced?: boolean }).enforced === false) return false;
  const { always, byArg } = policy.rulesFor(tool);
  const rules = [...always, ...[...byArg.values()].flat()];
  if (rules.some((rule) => rule.verdict === "deny" && rule.name.startsWith("deny:"))) return true;
  return policy.defaultVerdict === "deny" && rules.every((rule) => rule.verdict === "deny");
}

export class ToolCatalog {
  private tools: ListedTool[] = [];
  private statuses = new Map<string, PinStatus>();
  private loading: Promise<void> | undefined;
  private again: Promise<void> | undefined;
  private loaded = false;
  private readonly reported = new Set<string>();

  constructor(
    private readonly client: Client,
    readonly server: string,
    private readonly warden: Warden,
    private readonly ledger: PinLedger | undefined,
    /** Hide tools the policy denies outright unless `servers.<id>.hide_denied` says otherwise (the gateway: true). */
    private readonly hideDeniedByDefault = false,
  ) {}

  /** Lists the server's tools again and re-checks every pin (on `tools/list_changed`, or a client's `tools/list`). */
  refresh(): Promise<void> {
    if (this.loading) {
      // A listing already under way may predate the change: list once more after it (once for all who ask meanwhile).
      this.again ??= this.loading
        .catch(() => {})
        .then(() => {
          this.again = undefined;
          return this.refresh();
        });
      return this.again;
    }
    this.loading = this.load().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  /** Lists once if nothing was listed yet. */
  async ensure(): Promise<void> {
    if (!this.loaded) await this.refresh();
    else if (this.loading) await this.loading;
  }

  private async load(): Promise<void> {
    const tools = await listAllTools(this.client);
    this.statuses = this.ledger
      ? await reviewTools(
          this.ledger,
          this.server,
          tools,
          pinRules(this.warden, this.server),
          (event) => auditPin(this.warden, event),
          this.reported,
        )
      : new Map();
    this.tools = tools;
    this.loaded = true;
  }

  /** The pin status of a listed tool; undefined when the server does not list it. Without a ledger every listed tool passes. */
  status(name: string): PinStatus | undefined {
    if (!this.ledger)
      return this.tools.some((tool) => tool.name === name) ? { ok: true, pinnedNow: false } : undefined;
    return this.statuses.get(name);
  }

  /** The tools to show a client. */
  visible(): ListedTool[] {
    const out: ListedTool[] = [];
    const spec = this.warden.policy.loaded.policy.servers?.[this.server];
    // Observing stops nothing: every tool is listed as the server lists it; pin failures are audited at call time.
    const observing = this.warden.observing;
    const hideDenied = (spec?.hide_denied ?? this.hideDeniedByDefault) && !observing;
    for (const tool of this.tools) {
      // The model never sees a tool it could never call (and so never tries it).
      if (hideDenied && deniedOutright(this.warden, this.server, tool.name)) continue;
      const status = this.statuses.get(tool.name);
      if (!this.ledger || status?.ok || observing) out.push(tool);
      else if (status?.verdict === "ask" && status.pin) {
        const { pin } = status;
        out.push({
          ...tool,
          description: pin.description,
          title: pin.title,
          inputSchema: pin.inputSchema ?? tool.inputSchema,
        });
      } else if (status?.verdict === "ask") {
        out.push({
          ...tool,
          description: `[toolwarden: this tool is not pinned; calls need approval] ${status.finding.message}`,
        });
      }
    }
    return out;
  }
}
