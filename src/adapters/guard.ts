/**
 * What every SDK adapter shares: the session a call joins, the decision (with the SDK's own
 * approvals), the refusal the model reads, and the labelling of outputs. Adapters import this
 * module; `protect.ts`, which knows every adapter, only detects the SDK and dispatches.
 */
import { answered, approvalEvent } from "../approvals/approvals.js";
import {
  ApprovalRequiredError,
  BUILTIN_RULES,
  clause,
  mayRun,
  PolicyDeniedError,
  sentence,
} from "../core/index.js";
import type { Agent, Call, Decision } from "../core/index.js";
import type { Session } from "../gateway/session.js";
import { runLabelled } from "../gateway/output.js";
import type { Warden } from "../gateway/warden.js";

/** How an adapter ties calls to a session and an agent, and what the model reads when a call is refused. */
export interface GuardOptions {
  /**
   * The session every call joins (a `Session` or its id). Without it: the session bound by
   * `warden.runInSession`, else one session per agent run where the SDK names the run, else one
   * session per guarded tool set.
   */
  session?: Session | string;
  /** Who is calling; usable in `agent.<attr>` conditions and per-agent limits. */
  agent?: Agent;
  /** What the user asked for, kept on sessions the adapter opens. */
  task?: string;
  /**
   * The user's own request, recorded once on each session the adapter opens as input labelled
   * `user` (for `user_asked`, `from: [user]` and `session.inputs`).
   */
  input?: string;
  /** The upstream the tools belong to (`servers.<name>` in the policy). */
  server?: string;
  /** The text the model reads instead of the output of a refused call. */
  refusal?: (decision: Decision, call: Call) => string;
}

/** A human's answer to an `ask`, collected by the SDK; undefined when there is none (yet). */
export interface ApprovalAnswer {
  approved: boolean;
  /** Who answered, for the approval store and the audit, e.g. `ai-sdk:<approvalId>`. */
  by: string;
  reason?: string;
}

/** Looks up (or asks for) the human's answer to an `ask` decision. */
export type Approver = (
  decision: Decision,
) => ApprovalAnswer | undefined | Promise<ApprovalAnswer | undefined>;

/** What became of one guarded call. */
export type GuardOutcome =
  | { allowed: true; decision: Decision; output: unknown }
  | { allowed: false; decision: Decision; message: string };

/**
 * The text a model reads for a refused call, from every adapter and the MCP gate: who refused,
 * which rule and why; the call did not run (and, for a pending approval, that it may be retried).
 */
export function refusalText(decision: Decision, call: Pick<Call, "tool">): string {
  const tool = decision.tool ?? call.tool;
  const rule = decision.rule ? ` (rule \`${decision.rule}\`)` : "";
  if (decision.verdict === "ask") {
    const pending = decision.approval ? `; approval ${decision.approval} is pending` : "";
    const retry = decision.approval ? "; once a human approves it, the same call may be retried" : "";
    return `toolwarden held \`${tool}\` for human approval${rule}: ${sentence(`${clause(decision.reason)}${pending}`)} The call was not run${retry}.`;
  }
  // A withheld output: the call ran, the model does not see what it returned.
  const ran =
    decision.rule === BUILTIN_RULES.detectOutput || decision.rule === BUILTIN_RULES.outputUnrecorded
      ? "The call ran; its output is withheld."
      : "The call was not run.";
  return `toolwarden denied \`${tool}\`${rule}: ${sentence(decision.reason)} ${ran}`;
}

/** The error a guarded tool throws where its SDK turns thrown errors into messages for the model. */
export function refusalError(decision: Decision, message: string): Error {
  const error =
    decision.verdict === "ask" ? new ApprovalRequiredError(decision) : new PolicyDeniedError(decision);
  error.message = message;
  return error;
}

/** Tool arguments as a Call's `args`: an object as is, anything else under `input`. */
export function toArgs(input: unknown): Record<string, unknown> {
  if (input === undefined || input === null) return {};
  if (typeof input === "object" && !Array.isArray(input)) return input as Record<string, unknown>;
  return { input };
}

/** Parses a model's JSON arguments; undefined when they are not a JSON object. */
export function parseArgs(text: string | undefined | null): Record<string, unknown> | undefined {
  if (!text?.trim()) return {};
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === "object" && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

interface OpenSession {
  warden: Warden;
  id: string;
}

// Sessions opened per SDK run object are forgotten by the Warden once the run object is collected.
const runSessions = new FinalizationRegistry<OpenSession>(({ warden, id }) => warden.endSession(id));

/**
 * The policy path every adapter shares: which session a call joins, decide (waiting for a human
 * when the Warden is set to), run only what may run, label the output. A refusal is a value, never
 * an exception, so each adapter can hand it to the model its own way.
 */
export class ToolGuard {
  readonly warden: Warden;
  readonly options: GuardOptions;
  private readonly byRun = new WeakMap<object, Session>();
  private fallback: Session | undefined;

  /** Sessions this guard has recorded `input` on. */
  private readonly inputRecorded = new Set<string>();

  constructor(warden: Warden, options: GuardOptions = {}) {
    this.warden = warden;
    this.options = options;
  }

  /**
   * The session for a call: the host's, the bound one, the run's (the SDK's run object, or an id
   * the SDK gives the conversation such as a LangGraph `thread_id`), or the guard's own.
   */
  session(run?: object | string): Session {
    const own = this.options.session;
    if (own !== undefined) return typeof own === "string" ? this.open(own) : own;
    const bound = this.warden.currentSession();
    if (bound) return bound;
    if (typeof run === "string") return this.open(run);
    if (run) {
      let session = this.byRun.get(run);
      if (!session) {
        session = this.open();
        this.byRun.set(run, session);
        runSessions.register(run, { warden: this.warden, id: session.id });
      }
      return session;
    }
    this.fallback ??= this.open();
    return this.fallback;
  }

  private open(id?: string): Session {
    const session = this.warden.session({ id, agent: this.options.agent, task: this.options.task });
    if (this.options.input !== undefined && !this.inputRecorded.has(session.id)) {
      this.inputRecorded.add(session.id);
      session.input(this.options.input, { labels: ["user"] });
    }
    return session;
  }

  /** The Call for one tool invocation in `session`. */
  call(tool: string, args: unknown, session: Session, server = this.options.server): Call {
    const call: Call = {
      tool,
      args: toArgs(args),
      session: session.id,
      agent: this.options.agent ?? session.agent,
    };
    if (server !== undefined) call.server = server;
    return call;
  }

  /** The pure verdict (no counting, no audit), e.g. for an SDK's `needsApproval` hook. */
  evaluate(call: Call): Decision {
    return this.warden.evaluate(call);
  }

  /**
   * Decides a call. Without `approver`, an `ask` waits for a human as the Warden is set to
   * (`approvals.wait`). With one, the SDK collects the human's answer itself (AI SDK and Agents
   * SDK approvals, a LangGraph `interrupt`): an answer for this exact call is recorded in the
   * approval store and audited, and an approved call is decided again, so the audit shows the
   * ask, the approval and the allow.
   */
  async decide(call: Call, approver?: Approver): Promise<Decision> {
    if (!approver) return this.enforce(call);
    const decision = await this.warden.decide(call);
    if (decision.verdict !== "ask" || !decision.approval) return decision;
    const answer = await approver(decision);
    if (!answer) return decision;
    const status = answer.approved ? "approved" : "denied";
    const reason = answer.reason ?? `${status} through the SDK's own approval flow`;
    const decided = await this.warden.approvals.settle(decision.approval, status, answer.by, reason);
    if (!decided) return decision;
    await this.warden.appendAudit(approvalEvent(decided, status, answer.by, reason, { via: "sdk" }));
    if (answer.approved) return this.warden.decide(call);
    return answered(decision, decided, 0);
  }

  private async enforce(call: Call): Promise<Decision> {
    try {
      return await this.warden.enforce(call);
    } catch (error) {
      if (error instanceof PolicyDeniedError || error instanceof ApprovalRequiredError) return error.decision;
      return {
        verdict: "deny",
        rule: BUILTIN_RULES.internalError,
        reason: `the policy check failed (${error instanceof Error ? error.message : String(error)}); fail closed`,
        findings: [],
        labels: [],
        tool: call.tool,
      };
    }
  }

  /** The text the model reads for a refused call. */
  refusal(decision: Decision, call: Call): string {
    return (this.options.refusal ?? refusalText)(decision, call);
  }

  /**
   * Decides `call` (see `decide` for `approver`) and runs `run` only if it may run; its output (or
   * the message of what it threw, which is rethrown) is labelled on `session`. Streams are labelled
   * once they end.
   */
  async run(call: Call, session: Session, run: () => unknown, approver?: Approver): Promise<GuardOutcome> {
    const decision = await this.decide(call, approver);
    if (!mayRun(decision)) {
      return { allowed: false, decision, message: this.refusal(decision, call) };
    }
    // Output detectors: the model gets the masked copy, or the refusal when the output is withheld.
    let withheld: Decision | undefined;
    const output = await runLabelled(
      run,
      (output) => this.warden.recordOutput(call, output, session),
      async (output) => {
        const guarded = await this.warden.guardOutput(call, output, session);
        withheld = guarded.withheld;
        return guarded.output;
      },
    );
    if (withheld) return { allowed: false, decision: withheld, message: this.refusal(withheld, call) };
    return { allowed: true, decision, output };
  }

  /**
   * Runs the host's tool named by the call (`invoke` passes it its arguments) through {@link run}.
   * A name the host has no tool for is still decided (and audited: such a call is worth a record);
   * where the policy would have let it run, the model is told which tools there are.
   */
  async runNamed<F>(
    tools: Readonly<Record<string, F>>,
    call: Call,
    session: Session,
    invoke: (fn: F) => unknown,
  ): Promise<GuardOutcome> {
    const fn = Object.hasOwn(tools, call.tool) ? tools[call.tool] : undefined;
    if (fn !== undefined) return this.run(call, session, () => invoke(fn));
    const decision = await this.decide(call);
    const known = Object.keys(tools)
      .map((name) => `\`${name}\``)
      .join(", ");
    const message = mayRun(decision)
      ? `there is no tool \`${call.tool}\`; the tools are ${known}. The call was not run.`
      : this.refusal(decision, call);
    return { allowed: false, decision, message };
  }
}

/** Output as the text a tool message carries. */
export function outputText(output: unknown): string {
  if (typeof output === "string") return output;
  if (output === undefined) return "";
  try {
    return JSON.stringify(output) ?? String(output);
  } catch {
    return String(output);
  }
}
