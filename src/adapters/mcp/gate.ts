import { ProtocolError, ProtocolErrorCode } from "@modelcontextprotocol/server";
import type { CallToolResult } from "@modelcontextprotocol/server";
import { sha256Hex } from "../../audit/chain.js";
import { answered } from "../../approvals/approvals.js";
import type { ApprovalSettings } from "../../approvals/approvals.js";
import { ApprovalRequiredError, BUILTIN_RULES, PolicyDeniedError } from "../../core/index.js";
import type { Agent, Call, Decision } from "../../core/index.js";
import { hashCall } from "../../gateway/index.js";
import { refusalText } from "../guard.js";
import type { Session, Warden } from "../../gateway/index.js";
import { auditPin } from "./catalog.js";
import type { ToolCatalog } from "./catalog.js";
import type { PinStatus } from "./pin-check.js";

/** `_meta` key under which a refused call carries its Decision. */
export const DECISION_META_KEY = "toolwarden/decision";

export interface GateOptions {
  /**
   * How a pin's approval waits (ms): `wait` (0: refuse at once, naming the pending approval),
   * `ttl` (how long it stays valid), `poll`. Default: the Warden's `approvals`.
   */
  approvals?: ApprovalSettings;
  /** @deprecated use `approvals.wait` */
  approvalWait?: number;
  /** @deprecated use `approvals.poll` */
  approvalPoll?: number;
  /** @deprecated use `approvals.ttl` */
  approvalTtl?: number;
}

/** Who is calling: the upstream server id, the session of this client connection and its agent. */
export interface CallContext {
  server: string;
  session: Session;
  agent?: Agent;
}

/**
 * Puts one MCP `tools/call` through the monitor: the tool's pin, then the policy (`warden.enforce`:
 * decide, limits, approvals, audit), then the upstream call, then the output's labels. A refusal is
 * a tool result with `isError: true` and the reason, so the model sees it and the client never
 * crashes; the Decision rides along in `_meta["toolwarden/decision"]`.
 */
export class ToolGate {
  private readonly approvals: ApprovalSettings;

  constructor(
    readonly warden: Warden,
    options: GateOptions = {},
  ) {
    const { approvalWait, approvalPoll, approvalTtl } = options;
    this.approvals = { wait: approvalWait, poll: approvalPoll, ttl: approvalTtl, ...options.approvals };
  }

  async call(
    catalog: ToolCatalog,
    context: CallContext,
    name: string,
    args: Record<string, unknown> | undefined,
    run: () => Promise<CallToolResult>,
  ): Promise<CallToolResult> {
    const call: Call = { tool: name, args: args ?? {}, server: context.server, session: context.session.id };
    if (context.agent) call.agent = context.agent;
    await catalog.ensure();
    const pinned = await this.checkPin(catalog, call, catalog.status(name));
    if (pinned) return refusal(pinned);

    try {
      await this.warden.enforce(call);
    } catch (error) {
      if (error instanceof PolicyDeniedError || error instanceof ApprovalRequiredError)
        return refusal({ ...error.decision, tool: name });
      throw error;
    }
    let result: CallToolResult;
    try {
      result = await run();
    } catch (error) {
      // An upstream error message is output too: it may carry the server's content.
      this.recordText(call, context.session, (error as Error)?.message ?? String(error));
      throw error;
    }
    // Output detectors (`detect: { secrets: { outputs: ... } }`): the client gets the masked result.
    // Structured content is recorded as the value it is, so `fields` label its parts; the text
    // parts are recorded too (a JSON or YAML rendering is split by the same fields).
    const guarded = await this.warden.guardOutput(call, result, context.session, (output, extra) => {
      const shown = output as CallToolResult;
      const labels: string[] = [];
      if (shown.structuredContent !== undefined)
        labels.push(...this.recordText(call, context.session, shown.structuredContent, extra));
      const text = toolResultText(shown, false);
      if (text || shown.structuredContent === undefined)
        labels.push(...this.recordText(call, context.session, text, extra));
      return [...new Set(labels)];
    });
    if (guarded.withheld) return refusal({ ...guarded.withheld, tool: name });
    const unrecorded = await this.durable(call, context.session);
    if (unrecorded) return refusal(unrecorded);
    return guarded.output as CallToolResult;
  }

  /**
   * Puts a request that is not a tool call through the policy as a call: `resources/read` (its
   * argument is the URI, and for a `file:` URI the `path`, so path and url constraints apply) or
   * `prompts/get`. A refusal is a JSON-RPC error naming the reason (these results have no error
   * form); the output is labelled like a tool's (`tools.resources/read.produces`, server labels).
   */
  async request<T>(
    context: CallContext,
    method: string,
    args: Record<string, unknown>,
    run: () => Promise<T>,
  ): Promise<T> {
    const call: Call = { tool: method, args, server: context.server, session: context.session.id };
    if (context.agent) call.agent = context.agent;
    try {
      await this.warden.enforce(call);
    } catch (error) {
      if (error instanceof PolicyDeniedError || error instanceof ApprovalRequiredError)
        throw refusalProtocolError({ ...error.decision, tool: method });
      throw error;
    }
    let result: T;
    try {
      result = await run();
    } catch (error) {
      this.recordText(call, context.session, (error as Error)?.message ?? String(error));
      throw error;
    }
    // Output detectors apply to resources and prompts as to tool results.
    const guarded = await this.warden.guardOutput(call, result, context.session, (output, extra) =>
      this.recordText(call, context.session, requestOutputText(output), extra),
    );
    if (guarded.withheld) throw refusalProtocolError({ ...guarded.withheld, tool: method });
    const unrecorded = await this.durable(call, context.session);
    if (unrecorded) throw refusalProtocolError(unrecorded);
    return guarded.output as T;
  }

  /**
   * Waits until the output just recorded is durable in the state store, so that a call the client
   * makes next, through any replica, sees it; undefined then. When the store cannot take it, the
   * output is withheld (the deny says why): content that is not recorded must not reach the agent.
   */
  private async durable(call: Call, session: Session): Promise<Decision | undefined> {
    try {
      await this.warden.flush(session.id);
      return undefined;
    } catch (error) {
      return deny(
        call.tool,
        BUILTIN_RULES.outputUnrecorded,
        `the output could not be recorded in the state store: ${(error as Error).message}`,
      );
    }
  }

  /** Null when the pin lets the call through; else the refusing Decision (audited). */
  private async checkPin(
    catalog: ToolCatalog,
    call: Call,
    status: PinStatus | undefined,
  ): Promise<Decision | null> {
    if (status?.ok) return null;
    const agent = typeof call.agent?.id === "string" ? call.agent.id : undefined;
    const base = { server: call.server as string, tool: call.tool, session: call.session, agent };
    if (this.warden.observing) {
      // Observe mode: the pin failure is audited as what it would have been, and the call goes on.
      await auditPin(this.warden, {
        ...base,
        verdict: status ? status.verdict : "deny",
        enforced: false,
        rule: status ? status.finding.code : "pin.unlisted",
        reason: status
          ? status.finding.message
          : `tool \`${call.tool}\` is not in the tool list of server \`${catalog.server}\``,
        findings: status ? [status.finding] : [],
        data: { phase: "call" },
      });
      return null;
    }
    if (!status) {
      const decision = deny(
        call.tool,
        "pin.unlisted",
        `tool \`${call.tool}\` is not in the tool list of server \`${catalog.server}\``,
      );
      await auditPin(this.warden, {
        ...base,
        verdict: "deny",
        rule: "pin.unlisted",
        reason: decision.reason,
        data: {},
      });
      return decision;
    }
    const { finding } = status;
    if (status.verdict === "deny") {
      await auditPin(this.warden, {
        ...base,
        verdict: "deny",
        rule: finding.code,
        reason: finding.message,
        findings: [finding],
        data: { phase: "call" },
      });
      return deny(call.tool, finding.code, finding.message, finding);
    }
    // `pins: ask`: a human approves this one call (bound to its exact arguments), not the new tool version.
    const approvals = this.warden.approvals;
    const callHash = sha256Hex(`pin:${finding.code}:${hashCall(call)}`);
    const approved = await approvals.redeem(callHash);
    if (approved) {
      await auditPin(this.warden, {
        ...base,
        verdict: "allow",
        rule: finding.code,
        reason: `approved once by ${approved.decidedBy ?? "an approver"}`,
        data: { approval: approved.id },
      });
      return null;
    }
    const pending = await approvals.request({
      call,
      callHash,
      rule: finding.code,
      reason: finding.message,
      ttl: this.approvals.ttl,
    });
    await auditPin(this.warden, {
      ...base,
      verdict: "ask",
      rule: finding.code,
      reason: finding.message,
      findings: [finding],
      data: { approval: pending.id },
    });
    const asked: Decision = {
      ...deny(call.tool, finding.code, finding.message, finding),
      verdict: "ask",
      approval: pending.id,
    };
    const wait = this.approvals.wait ?? approvals.settings.wait;
    if (wait <= 0) return asked;
    const outcome = await approvals.wait(pending.id, { ms: wait, poll: this.approvals.poll });
    if (outcome?.status === "approved") return (await approvals.redeem(callHash)) ? null : asked;
    return answered(asked, outcome, wait);
  }

  /** Labels the output: the policy's `tools.<name>.produces`, `servers.<id>.produces` and `servers.<id>.tools.<name>.produces`. */
  private recordText(call: Call, session: Session, text: unknown, extraLabels: string[] = []): string[] {
    const perTool =
      this.warden.policy.loaded.policy.servers?.[call.server as string]?.tools?.[call.tool]?.produces;
    if (!perTool?.length) return this.warden.recordOutput(call, text, session, extraLabels);
    const policy = this.warden.policy;
    const decl = policy.tools.get(call.tool);
    // The whole output, with every label its fields declare (they are not split here).
    const labels = new Set([
      ...(decl?.produces ?? []),
      ...(decl?.fields.flatMap((field) => field.labels) ?? []),
      ...(policy.serverLabels[call.server as string] ?? []),
      ...perTool,
      ...extraLabels,
    ]);
    session.recordOutput(call.tool, text, [...labels]);
    return [...labels];
  }
}

function deny(tool: string, rule: string, reason: string, finding?: Decision["findings"][number]): Decision {
  return { verdict: "deny", rule, reason, findings: finding ? [finding] : [], labels: [], tool };
}

/** The tool result a refused call returns. */
export function refusal(decision: Decision): CallToolResult {
  const { text, meta } = refused(decision);
  return { content: [{ type: "text", text }], isError: true, _meta: meta };
}

/** The text every adapter shows the model (`refusalText`), and the Decision for the client under `_meta`. */
function refused(decision: Decision): { text: string; meta: Record<string, unknown> } {
  const text = refusalText(decision, { tool: decision.tool ?? "call" });
  const { verdict, rule, reason, findings, labels, approval, flows } = decision;
  return {
    text,
    meta: { [DECISION_META_KEY]: { verdict, rule, reason, findings, labels, flows, approval } },
  };
}

/** A refused `resources/read` or `prompts/get`: a JSON-RPC error with the reason and the Decision. */
export function refusalProtocolError(decision: Decision): ProtocolError {
  const { text, meta } = refused(decision);
  return new ProtocolError(ProtocolErrorCode.InvalidRequest, text, meta);
}

/** The text of a resource's contents or a prompt's messages. */
function requestOutputText(result: unknown): string {
  const { contents, messages } = (result ?? {}) as {
    contents?: Array<{ text?: unknown }>;
    messages?: unknown;
  };
  if (Array.isArray(contents))
    return contents.map((c) => (typeof c.text === "string" ? c.text : "")).join("\n");
  return JSON.stringify(messages ?? []);
}

/** The text a model reads from a tool result: text parts, embedded resource text, links, and (unless `structured` is false) structured content. */
export function toolResultText(result: CallToolResult, structured = true): string {
  const parts: string[] = [];
  for (const item of result.content ?? []) {
    if (item.type === "text") parts.push(item.text);
    else if (item.type === "resource" && "text" in item.resource && typeof item.resource.text === "string")
      parts.push(item.resource.text);
    else if (item.type === "resource_link")
      parts.push([item.uri, item.name, item.description].filter(Boolean).join(" "));
  }
  if (structured && result.structuredContent !== undefined)
    parts.push(JSON.stringify(result.structuredContent));
  return parts.join("\n");
}
