import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import { answered, Approvals } from "../approvals/approvals.js";
import type { ApprovalSettings } from "../approvals/approvals.js";
import type { AuditEvent, AuditSink } from "../audit/types.js";
import { ApprovalRequiredError, BUILTIN_RULES, mayRun, PolicyDeniedError } from "../core/index.js";
import type { Agent, Call, Decision, Finding } from "../core/index.js";
import { compilePolicyFile, compilePolicyObject, compilePolicyText } from "../policy/index.js";
import type { CompiledLimit, CompiledPolicy } from "../policy/index.js";
import { MemoryStateStore } from "../stores/memory/index.js";
import { withStoreDeadlines } from "../stores/deadline.js";
import { splitOutput } from "../taint/index.js";
import type { StateStore } from "../stores/types.js";
import { Judge } from "../judge/judge.js";
import type { JudgeSpec } from "../judge/schema.js";
import { Authority, withAuthorityFinding } from "../plans/authority.js";
import type { AuthorityCheck } from "../plans/authority.js";
import type { Plan, PlanOptions, PlanStep } from "../plans/plan.js";
import type { ScopeSpec } from "../plans/scope.js";
import "./engines.js";
import { evaluateCall, internalError } from "./evaluate.js";
import { runLabelled } from "./output.js";
import { observeStage } from "./observe.js";
import type { DecideContext } from "./stages/context.js";
import { needsState } from "./stages/context.js";
import { runStages } from "./stages/pipeline.js";
import { DecisionTrail } from "./trail.js";
import { outputDetectors, scanOutput } from "./output-detect.js";
import type { OutputAction } from "../policy/index.js";
import { Session } from "./session.js";
import type { SessionOptions, SessionReport } from "./session.js";
import { SessionManager, SessionRefusedError } from "./sessions.js";
import type { SessionBounds } from "./sessions.js";

/** The label `detect: { <detector>: { outputs: label } }` gives an output holding a hit. */
export const SECRET_LABEL = "secret";

const OUTPUT_DONE: Record<OutputAction, string> = { label: "labelled", mask: "masked", deny: "withheld" };

/** A tool output after the output detectors (`Warden.guardOutput`). */
export interface GuardedOutput {
  /** What the model may see: the output or a masked copy; undefined when withheld. */
  output: unknown;
  /** Labels the output got on the session. */
  labels: string[];
  /** What the detectors did, when they found something. */
  action?: OutputAction;
  findings: Finding[];
  /** Set when the output is withheld (`outputs: deny`): the refusal to report instead. */
  withheld?: Decision;
}

export interface WardenOptions {
  /** Limits, budgets and approvals; in-memory by default. Share a Redis store across replicas. */
  store?: StateStore;
  /**
   * Deadline of one store operation (ms), default 250: past it the call is denied (rule
   * `store-unavailable`) and a late answer is never used. Ignored when `store` already has deadlines.
   */
  storeTimeoutMs?: number;
  /** Where every decision, approval and output goes. None by default. */
  audit?: AuditSink;
  /** How asks wait for a human: `wait` (ms; 0, the default, throws `ApprovalRequiredError` at once), `ttl` (default 15 minutes), `poll` (default 200 ms). */
  approvals?: ApprovalSettings;
  /** Bound on the memory of one session's flow index (bytes); past it, flow checks fail closed. Default 32 MiB. */
  maxTaintBytes?: number;
  /** Most live sessions in the store; a new session past it is refused (its calls are denied). Default 100,000. */
  maxSessions?: number;
  /**
   * Sessions live in the state store (every replica and restart sees the same session): idle
   * expiry (`ttlMs`, default 24 h), a cap per agent (`maxPerAgent`, default 1,000) and how many
   * this process keeps rebuilt in memory (`cached`, default 10,000).
   */
  sessions?: SessionBounds;
  /** The clock of every decision, limit and approval (creation, expiry, answers); default `Date.now`. */
  now?: () => number;
  /**
   * Observe every decision whatever the policy's `mode` (`serve --observe`, `mcp proxy --observe`):
   * computed and audited in full, `enforced: false` on the ones that would stop a call, which proceeds.
   */
  observe?: boolean;
  /** Key that signs plans and their authority tokens; default `TOOLWARDEN_PLAN_KEY`, else random per process. */
  planKey?: string | Buffer;
}

/**
 * Options for `wrap`: how the function's parameters become the call's `args`.
 *
 * A call with one plain object is that object as `args`. Positional values are named by
 * `params`, else by the function's own parameter names when they cover the arguments the policy
 * declares for the tool, else (one value, one declared argument) by that declared name. `wrap`
 * throws at once for a function with several parameters that cannot be named this way; a
 * positional call that still cannot be named is denied (`wrap.unnamed_args`), never run unchecked.
 */
export interface WrapOptions {
  /** Names for positional parameters, in order (`["url"]` for `(u) => ...`). */
  params?: string[];
  server?: string;
}

const sessionScope = new AsyncLocalStorage<Session>();

/**
 * The reference monitor. `evaluate` is the pure decision; `decide` adds limits, budgets,
 * approvals and the audit trail; `enforce` and `wrap` stop the call unless it is allowed.
 */
export class Warden {
  private compiled: CompiledPolicy;
  readonly store: StateStore;
  readonly audit: AuditSink | undefined;
  private readonly options: WardenOptions;
  private readonly sessions: SessionManager;
  private readonly now: () => number;
  private readonly authority: Authority;
  /** Pending asks and human answers, on this Warden's store and clock; every path that asks uses it. */
  readonly approvals: Approvals;
  /** The reviewer for the current policy's `judge:`; its cache lives as long as the spec does. */
  private judge: Judge | undefined;
  /** Per tool, the argument names the policy checks (for naming `wrap`'s positional values). */
  /** Approvals this Warden asked for whose decision it has not audited yet (it audits each once). */
  /** The audit trail of decisions and approvals, when there is an audit sink. */
  private readonly trail: DecisionTrail | undefined;
  private readonly declaredCache = new Map<string, { policy: CompiledPolicy; args: string[] }>();

  constructor(policy: CompiledPolicy, options: WardenOptions = {}) {
    this.compiled = policy;
    this.options = options;
    this.store = withStoreDeadlines(options.store ?? new MemoryStateStore(), {
      timeoutMs: options.storeTimeoutMs,
    });
    this.audit = options.audit;
    this.trail = options.audit
      ? new DecisionTrail(
          options.audit,
          this.store,
          () => this.now(),
          () => this.compiled,
          options.approvals?.auditPoll,
        )
      : undefined;
    this.now = options.now ?? Date.now;
    this.sessions = new SessionManager(
      this.store,
      {
        ...options.sessions,
        maxSessions: options.sessions?.maxSessions ?? options.maxSessions,
        maxBytes: options.maxTaintBytes ?? DEFAULT_TAINT_BYTES,
      },
      (session) =>
        new Session({
          ...session,
          labelMinMatch: this.compiled.labelMinMatch,
          maxTaintBytes: options.maxTaintBytes,
        }),
      () => this.now(),
    );
    this.approvals = new Approvals(this.store, () => this.now(), options.approvals);
    this.authority = new Authority({
      key: options.planKey ?? process.env.TOOLWARDEN_PLAN_KEY,
      store: this.store,
      now: () => this.now(),
    });
  }

  /** A Warden for a policy file (YAML or JSON, with `extends`). Throws `PolicyLoadError`. */
  static fromFile(file: string, options?: WardenOptions): Warden {
    return new Warden(compilePolicyFile(file), options);
  }

  static fromText(text: string, options?: WardenOptions & { file?: string }): Warden {
    return new Warden(compilePolicyText(text, options?.file), options);
  }

  static fromObject(policy: unknown, options?: WardenOptions): Warden {
    return new Warden(compilePolicyObject(policy), options);
  }

  /**
   * Resolves when the policy's analyzers have loaded what loads asynchronously (the PostgreSQL
   * parser); checks that need it fail closed until then. Await it before the first call when the
   * Warden was built synchronously (`fromFile`, `fromText`, `fromObject`).
   */
  async ready(): Promise<void> {
    await this.compiled.ready?.();
  }

  get policy(): CompiledPolicy {
    return this.compiled;
  }

  /** Whether every decision is observed rather than enforced (`mode: observe`, or the `observe` option). */
  get observing(): boolean {
    return this.options.observe === true || this.compiled.observe;
  }

  /** Swaps the policy atomically (hot reload); sessions and counters are kept. */
  setPolicy(policy: CompiledPolicy): void {
    this.compiled = policy;
  }

  /**
   * This process's handle on a session (created when new; the store opens it on first use).
   * `runInSession` binds it to async code so wrapped tools need no extra parameters.
   */
  session(options: Partial<SessionOptions> = {}): Session {
    const id = options.id ?? randomUUID();
    return this.sessions.local({ id, agent: options.agent, task: options.task });
  }

  /**
   * Opens a session in the store (or joins it) and brings it up to date: `owner` is the agent
   * that opened it first. Throws a `ToolwardenError` (`session_refused`) past a cap, or the
   * store's error when it is unavailable.
   */
  async openSession(options: Partial<SessionOptions> & { id: string }): Promise<Session> {
    return this.sessions.ready({ id: options.id, agent: options.agent, task: options.task });
  }

  /** Live sessions in the store (every replica's), or of one agent. */
  liveSessions(agent?: string): Promise<number> {
    return this.store.countSessions(this.now(), agent);
  }

  /** Waits until every output and input recorded on the session is durable in the store; throws if it is not. */
  async flush(sessionId: string): Promise<void> {
    await this.sessions.flush(sessionId);
  }

  /** Runs `fn` with `session` as the current session of every wrapped tool it calls. */
  runInSession<T>(session: Session, fn: () => T): T {
    return sessionScope.run(session, fn);
  }

  /** The session bound by `runInSession`, if any. */
  currentSession(): Session | undefined {
    return sessionScope.getStore();
  }

  /**
   * Declares a plan: signed, with one single-use (`max_calls`), time-limited token per step.
   * A call that presents a token (`{ ...call, token }`), runs inside `runInPlan`, or belongs to
   * the plan's `session` must be the plan's next step with arguments inside the step's tests;
   * otherwise it is denied (`plan.outside`, `plan.order`, `plan.replay`, `plan.expired`,
   * `plan.args`, `plan.tampered`). A plan only narrows: the policy still decides its calls.
   */
  plan(steps: readonly PlanStep[], options?: PlanOptions): Plan {
    const plan = this.authority.plan(steps, options);
    if (options?.session !== undefined)
      this.session({ id: options.session }).record([{ k: "p", s: plan.id }]);
    return plan;
  }

  /**
   * `plan`, durable in the state store before it returns: with a shared store (Redis, SQLite)
   * any replica redeems its tokens, each exactly once, and its session follows it everywhere.
   * The signing key is `planKey`, else `TOOLWARDEN_PLAN_KEY`, else one the store shares.
   */
  async createPlan(steps: readonly PlanStep[], options?: PlanOptions): Promise<Plan> {
    const plan = await this.authority.createPlan(steps, options);
    if (options?.session !== undefined) {
      this.session({ id: options.session }).record([{ k: "p", s: plan.id }]);
      await this.sessions.flush(options.session);
    }
    return plan;
  }

  /** Ends a plan: its tokens stop working and its session is free of it. */
  endPlan(plan: Plan | string): void {
    const session = this.authority.endPlan(plan);
    if (session !== undefined) this.session({ id: session }).record([{ k: "p", s: "" }]);
  }

  /** Runs `fn` with `plan` in force for every call inside it. */
  runInPlan<T>(plan: Plan, fn: () => T): T {
    return this.authority.runInPlan(plan, fn);
  }

  /** Runs `fn` in a narrower scope: only `tools`, arguments inside `resources`, judged against `task`. */
  scope<T>(spec: ScopeSpec, fn: () => T): T {
    return this.authority.scope(spec, fn);
  }

  /** Ends a session everywhere: the store forgets it (and its owner), this process drops its copy. */
  endSession(id: string): Promise<void> {
    return this.sessions.end(id).catch((error: Error) => {
      process.emitWarning(`toolwarden: session \`${id}\` was not ended in the store: ${error.message}`);
    });
  }

  /** The session a call belongs to, as this process holds it: its `session` id, the bound session, or none. */
  private sessionFor(call: Call): Session | undefined {
    const bound = sessionScope.getStore();
    if (typeof call?.session === "string") {
      return this.sessions.local({ id: call.session, agent: plainAgent(call.agent) }, bound);
    }
    return bound === undefined ? undefined : this.sessions.local({ id: bound.id }, bound);
  }

  /** The call's session brought up to date with the store (synchronous on the memory store). */
  private readySession(call: Call): Session | Promise<Session> | undefined {
    const bound = sessionScope.getStore();
    const id =
      typeof call.session === "string" ? call.session : call.session === undefined ? bound?.id : undefined;
    if (id === undefined) return undefined;
    return this.sessions.ready(
      { id, agent: plainAgent(call.agent) ?? (bound?.id === id ? bound.agent : undefined) },
      bound,
    );
  }

  /**
   * The audited deny for a call whose session could not be opened (the error of `openSession`):
   * `session-limit` past a cap, else `store-unavailable` naming the store.
   */
  refuse(call: Call, error: unknown): Promise<Decision> {
    return this.sessionUnavailable(call, error);
  }

  /** The session state cannot be had (store down, cap reached): the call is denied, whatever `fail` says. */
  private sessionUnavailable(call: Call, error: unknown): Promise<Decision> {
    const message = error instanceof Error ? error.message : String(error);
    const refused = error instanceof SessionRefusedError;
    const named = message.includes("state store")
      ? message
      : `state store \`${this.store.kind}\` failed: ${message}`;
    const decision: Decision = {
      verdict: "deny",
      rule: refused ? BUILTIN_RULES.sessionLimit : BUILTIN_RULES.storeUnavailable,
      reason: refused ? message : `the session's state is unavailable: ${named}`,
      findings: [],
      labels: [],
      tool: typeof call.tool === "string" ? call.tool : undefined,
    };
    return this.record(call, decision);
  }

  /** The pure decision: policy, analyzers and flows; no counting, no I/O. Never throws. */
  evaluate(call: Call): Decision {
    // Not even an object: malformed, and nothing below may read it (as `decide` does).
    if (call === null || typeof call !== "object" || Array.isArray(call))
      return evaluateCall(this.compiled, call, undefined);
    let session: Session | undefined;
    try {
      session = this.sessionFor(call);
    } catch (error) {
      return internalError(this.compiled, call, error);
    }
    const bound = this.withSession(call, session);
    const decision = evaluateCall(this.compiled, bound, session);
    const guard = this.authority.check(bound, false);
    return observeStage(
      this.compiled,
      bound,
      guard?.finding ? withAuthorityFinding(decision, guard.finding) : decision,
      this.options.observe,
    );
  }

  private withSession(call: Call, session: Session | undefined): Call {
    if (!session || (call.session === session.id && call.agent)) return call;
    return { ...call, session: session.id, agent: call.agent ?? session.agent };
  }

  /**
   * The full decision: `evaluate`, then limits and budget (counted only for calls that will run),
   * a pending approval for `ask`, and the audit record. Never throws; fail-closed on store or audit errors.
   * `opened` is the call's session as `openSession` just returned it for this call: it is not read again.
   */
  async decide(call: Call, opened?: Session): Promise<Decision> {
    return this.decideFast(call, opened);
  }

  /**
   * `decide`, synchronous when nothing needs I/O (no limit or budget applies, no approval, no
   * audit sink), so an allowed call through `wrap` costs little more than `evaluate`.
   */
  private decideFast(call: Call, opened?: Session): Decision | Promise<Decision> {
    // Not even an object (a `null` line in a JSONL stream): malformed, and nothing below may read it.
    if (call === null || typeof call !== "object" || Array.isArray(call))
      return evaluateCall(this.compiled, call, undefined);
    // The caller just brought the call's session up to date (`openSession`): no second read.
    if (opened !== undefined && opened.id === call.session && this.sessions.peek(opened.id) === opened)
      return this.decideIn(call, opened);
    let ready: Session | Promise<Session> | undefined;
    try {
      ready = this.readySession(call);
    } catch (error) {
      return this.sessionUnavailable(call, error);
    }
    if (ready instanceof Promise) {
      return ready.then(
        (session) => this.decideIn(call, session),
        (error: unknown) => this.sessionUnavailable(call, error),
      );
    }
    return this.decideIn(call, ready);
  }

  /** `decide` with the call's session up to date. */
  private decideIn(call: Call, session: Session | undefined): Decision | Promise<Decision> {
    const policy = this.compiled;
    let decision: Decision;
    const limits: CompiledLimit[] = [];
    try {
      call = this.withSession(call, session);
      decision = evaluateCall(policy, call, session, limits);
    } catch (error) {
      decision = internalError(policy, call, error);
    }
    // Plans and scopes; a passing plan call reserves its token use until the decision is final.
    const reserve = decision.verdict !== "deny";
    if (this.authority.needsStore(call, session?.plan)) {
      const planned = call;
      const evaluated = decision;
      return this.authority.checkShared(planned, reserve, session?.plan).then(
        (guard) => this.decideGuarded(policy, planned, session, evaluated, limits, guard),
        (error: unknown) => this.sessionUnavailable(planned, error),
      );
    }
    return this.decideGuarded(
      policy,
      call,
      session,
      decision,
      limits,
      this.authority.check(call, reserve, session?.plan),
    );
  }

  /** `decide` after the plan and scope checks. */
  private decideGuarded(
    policy: CompiledPolicy,
    call: Call,
    session: Session | undefined,
    decision: Decision,
    limits: CompiledLimit[],
    guard: AuthorityCheck | undefined,
  ): Decision | Promise<Decision> {
    if (guard?.finding) decision = withAuthorityFinding(decision, guard.finding);
    const decl = policy.tools.get(call.tool);
    const cost = call.cost ?? decl?.cost ?? 0;
    if (!needsState(policy, decl, cost, limits) && !this.audit && decision.verdict !== "ask") {
      decision = observeStage(policy, call, decision, this.options.observe);
      if (session) this.noteDecision(session, decision);
      guard?.settle(decision);
      return decision;
    }
    const ctx: DecideContext = {
      policy,
      call,
      session,
      decl,
      cost,
      limits,
      store: this.store,
      approvals: this.approvals,
      now: this.now,
      observeAll: this.options.observe,
      judge: this.judgeHook,
      scopeTask: this.scopeTaskHook,
      opened: this.openedHook,
    };
    const finished = this.finishDecision(ctx, decision);
    if (!guard) return finished;
    return finished.then((final) => {
      guard.settle(final);
      return final;
    });
  }

  /** The stages after `evaluate` (`DECIDE_STAGES`), then the session's report and the audit record. */
  private async finishDecision(ctx: DecideContext, decision: Decision): Promise<Decision> {
    try {
      decision = await runStages(ctx, decision);
    } catch (error) {
      decision = internalError(ctx.policy, ctx.call, error);
    }
    if (ctx.session) this.noteDecision(ctx.session, decision);
    return this.record(ctx.call, decision);
  }

  // The DecideContext's callbacks, made once per Warden: a decision allocates no closure.
  private readonly judgeHook = (spec: JudgeSpec): Judge => this.judgeFor(spec);
  private readonly scopeTaskHook = (): string | undefined => this.authority.scopeTask();
  private readonly openedHook = (id: string): void => {
    this.trail?.watchApproval(id);
  };

  /** The reviewer for the policy's `judge:`; its cache lives as long as the spec does. */
  private judgeFor(spec: JudgeSpec): Judge {
    if (this.judge?.spec !== spec) this.judge = new Judge(spec);
    return this.judge as Judge;
  }

  /** Counts a decision for the session's report, here and in the store. */
  private noteDecision(session: Session, decision: Decision): void {
    session.note(decision);
    const tool = decision.tool ?? "?";
    const blocked =
      decision.verdict === "deny" && decision.labels.length
        ? { tool, rule: decision.rule, labels: decision.labels }
        : undefined;
    this.sessions.note(session, tool, decision.verdict, blocked);
  }

  /** Writes the audit record; if it cannot be kept, a call that would run is denied (unless `fail: open`). */
  private record(call: Call, decision: Decision): Promise<Decision> {
    return this.trail ? this.trail.record(call, decision) : Promise.resolve(decision);
  }

  /** Audits an event that is not a decision (an approval, a policy change, a pin). */
  async appendAudit(event: Omit<AuditEvent, "time"> & { time?: string }): Promise<void> {
    await this.trail?.append(event);
  }

  /**
   * Audits, once each, the decisions made in the store on approvals this Warden asked for, by
   * whoever made them (`toolwarden approvals --store`, another replica, a dashboard).
   */
  async auditApprovalDecisions(all = false): Promise<void> {
    await this.trail?.auditApprovalDecisions(all);
  }

  /**
   * Decides and, unless the call may run, throws: `PolicyDeniedError` for deny, and for ask either
   * waits for a human (`approvals.wait`) or throws `ApprovalRequiredError`.
   */
  async enforce(call: Call): Promise<Decision> {
    const fast = this.decideFast(call);
    const decision = fast instanceof Promise ? await fast : fast;
    if (mayRun(decision)) return decision;
    return this.refuseOrWait(call, decision);
  }

  /** For a call that may not run now: wait for an approval and return the allowing decision, or throw. */
  private async refuseOrWait(call: Call, decision: Decision): Promise<Decision> {
    if (decision.verdict === "ask") decision = await this.awaitApproval(call, decision);
    if (decision.verdict === "deny") throw new PolicyDeniedError(decision);
    if (decision.verdict === "ask") throw new ApprovalRequiredError(decision);
    return decision;
  }

  private async awaitApproval(call: Call, decision: Decision): Promise<Decision> {
    const wait = this.approvals.settings.wait;
    if (!decision.approval || wait <= 0) return decision;
    const approval = await this.approvals.wait(decision.approval);
    if (approval?.status === "approved") return this.decide(call);
    return this.record(call, answered(decision, approval, wait));
  }

  /**
   * Records a tool's output on the session: it gets the tool's (and its server's) labels and is
   * fingerprinted, so later calls that carry its content are caught by `flows`. Field-level labels
   * (`fields`) label parts of object outputs; `propagates` adds the labels that flowed into the
   * call; `declassifies` removes labels (audited). Returns the labels the output got.
   */
  recordOutput(call: Call, output: unknown, session?: Session, extraLabels?: readonly string[]): string[] {
    const policy = this.compiled;
    const target = session ?? this.sessionFor(call);
    if (!target) return [];
    this.recordCall(call, target);
    const decl = policy.tools.get(call.tool);
    const base = new Set([
      ...(decl?.produces ?? []),
      ...((call.server && policy.serverLabels[call.server]) || []),
      ...(extraLabels ?? []),
    ]);
    if (decl?.propagates && target.hasLabelledContent) {
      for (const hit of target.flowsInto(call.args ?? {})) base.add(hit.label);
    }
    const removed = decl?.declassifies.filter((label) => base.delete(label)) ?? [];
    const valueSet = policy.valueSetTools.has(call.tool);
    const applied = new Set<string>();
    // Every part of one output goes to the store in one atomic write.
    const parts: Array<{ source: string; value: unknown; labels?: string[]; values?: boolean }> = [];
    for (const part of splitOutput(output, decl?.fields ?? [], [...base], decl?.declassifies, {
      values: valueSet,
    }).parts) {
      // Only parts that carry no label are trusted values (a sender, not a body; never a whole
      // labelled output, nor one whose fields could not be told apart).
      if (!part.labels.length) {
        if (valueSet) parts.push({ source: call.tool, value: part.value, values: true });
        continue;
      }
      parts.push({ source: call.tool, value: part.value, labels: part.labels });
      for (const label of part.labels) applied.add(label);
    }
    target.record(Session.entries(parts));
    if (removed.length && this.audit) {
      // Declassification is audited; a failure to record it is reported, never silent.
      this.appendAudit({
        kind: "output",
        session: target.id,
        tool: call.tool,
        labels: [...applied],
        data: { declassified: removed },
      }).catch((error) =>
        process.emitWarning(`toolwarden: could not audit declassification: ${(error as Error).message}`),
      );
    }
    return [...applied];
  }

  /** Records the arguments of a call that ran, for `from: ["args:<tool>.<path>"]` (done by `recordOutput` too). */
  recordCall(call: Call, session?: Session): void {
    const paths = this.compiled.argValueSets.get(call.tool);
    if (!paths) return;
    (session ?? this.sessionFor(call))?.recordArgs(call.tool, call.args, paths);
  }

  /**
   * Applies the output detectors of the policy (`detect: { secrets: { outputs: label | mask |
   * deny } }`) to a tool's output, then records it on the session as `recordOutput` does: `label`
   * adds the `secret` label (so flows of it into sinks can be refused), `mask` replaces each hit
   * in a copy, which is what is recorded and what the caller hands to the model, and `deny`
   * withholds the output (`withheld` is the refusal). What was found and done is audited (an
   * `output` event; the secrets themselves are never written).
   */
  async guardOutput(
    call: Call,
    output: unknown,
    session?: Session,
    /** Records the output in place of `recordOutput` (an adapter that labels a text rendering). */
    record: (output: unknown, extraLabels: string[]) => string[] = (value, extra) =>
      this.recordOutput(call, value, session, extra),
  ): Promise<GuardedOutput> {
    const uses = outputDetectors(this.compiled, call.tool);
    const scan = uses.length ? scanOutput(uses, output) : undefined;
    if (scan?.action === undefined) return { output, labels: record(output, []), findings: [] };
    const { action, findings } = scan;
    const labels = action === "deny" ? [] : record(scan.output, action === "label" ? [SECRET_LABEL] : []);
    const codes = [...new Set(findings.map((f) => f.code))];
    if (this.audit) {
      const target = session ?? this.sessionFor(call);
      await this.appendAudit({
        kind: "output",
        session: target?.id,
        tool: call.tool,
        labels,
        data: { detected: codes, action: OUTPUT_DONE[action] },
      });
    }
    if (action !== "deny") return { output: scan.output, labels, action, findings };
    const withheld: Decision = {
      verdict: "deny",
      rule: BUILTIN_RULES.detectOutput,
      reason: `the output of \`${call.tool}\` was withheld: it holds ${codes.join(", ")}`,
      findings,
      labels: [],
      tool: call.tool,
    };
    return { output: undefined, labels, action, findings, withheld };
  }

  /** Guards a function: every call is decided first; outputs are labelled. The wrapper is always async. */
  wrap<A extends unknown[], R>(
    name: string,
    fn: (...args: A) => R,
    options: WrapOptions = {},
  ): (...args: A) => Promise<Awaited<R>> {
    const { server } = options;
    const explicit = options.params !== undefined;
    const params = options.params ?? this.paramNames(name, fn);
    return async (...params_: A): Promise<Awaited<R>> => {
      const session = sessionScope.getStore();
      const args = toArgs(params_, params, this.declaredArgs(name), explicit);
      const call: Call = { tool: name, args: args ?? {}, server };
      if (session) {
        call.session = session.id;
        call.agent = session.agent;
      }
      if (!args) {
        throw new PolicyDeniedError(
          await this.record(call, {
            verdict: "deny",
            rule: BUILTIN_RULES.wrapUnnamedArgs,
            reason: `\`${name}\` was called with positional arguments that cannot be named; wrap it with \`{ params: [...] }\` or call it with one object`,
            findings: [],
            labels: [],
            tool: name,
          }),
        );
      }
      const fast = this.decideFast(call);
      const decision = fast instanceof Promise ? await fast : fast;
      if (!mayRun(decision)) await this.refuseOrWait(call, decision);
      const output = await runLabelled(
        () => fn(...params_),
        (output) => this.recordOutput(call, output, session),
        (output) => {
          // No output detector for the tool: record it and hand it on without another promise.
          if (!outputDetectors(this.compiled, call.tool).length) {
            this.recordOutput(call, output, session);
            return output;
          }
          return this.guardOutput(call, output, session).then((guarded) => {
            if (guarded.withheld) throw new PolicyDeniedError(guarded.withheld);
            return guarded.output;
          });
        },
      );
      return output as Awaited<R>;
    };
  }

  /** The top-level argument names the policy checks for a tool: constraints, `required`, and rules that need one. */
  private declaredArgs(tool: string): string[] {
    const cached = this.declaredCache.get(tool);
    if (cached?.policy === this.compiled) return cached.args;
    const decl = this.compiled.tools.get(tool);
    const own = decl ? [...decl.checks, ...decl.asyncChecks, ...decl.required].map((c) => c.path[0]) : [];
    const args = [...new Set([...own, ...this.compiled.rulesFor(tool).byArg.keys()])];
    if (this.declaredCache.size < 10_000) this.declaredCache.set(tool, { policy: this.compiled, args });
    return args;
  }

  /**
   * The function's own parameter names, when they can name its positional values: every one a
   * plain identifier, and together covering the arguments the policy declares for the tool.
   * Throws for a function of several parameters that cannot be named (a lone one may still be
   * the object form, decided per call).
   */
  private paramNames(tool: string, fn: (...args: never[]) => unknown): string[] | undefined {
    const names = parameterNames(fn);
    const declared = this.declaredArgs(tool);
    if (names && declared.every((arg) => names.includes(arg))) return names;
    if (fn.length > 1 || (names && names.length > 1)) {
      const shown = names ? names.map((n) => `\`${n}\``).join(", ") : "its parameters";
      const wanted = declared.length
        ? ` to the declared arguments ${declared.map((a) => `\`${a}\``).join(", ")}`
        : "";
      throw new TypeError(
        `wrap(\`${tool}\`): cannot map ${shown}${wanted}; pass \`{ params: [${(declared.length ? declared : ["..."]).map((a) => `"${a}"`).join(", ")}] }\` or take one object parameter`,
      );
    }
    return undefined;
  }

  /** `wrap` for every function of a record, keyed by tool name. */
  wrapAll<T extends Record<string, (...args: any[]) => unknown>>(
    tools: T,
    options: WrapOptions = {},
  ): { [K in keyof T]: (...args: Parameters<T[K]>) => Promise<Awaited<ReturnType<T[K]>>> } {
    const out: Record<string, unknown> = {};
    for (const [name, fn] of Object.entries(tools)) out[name] = this.wrap(name, fn, options);
    return out as never;
  }

  /** The session's report as this process saw it (decisions by verdict and tool, spend, labels, flows blocked). */
  report(sessionId: string): SessionReport | undefined {
    return this.sessions.peek(sessionId)?.report(this.compiled.budget);
  }

  /** The session's report from the store: every replica's decisions; undefined when the session does not live. */
  async sessionReport(sessionId: string): Promise<SessionReport | undefined> {
    return this.sessions.report(sessionId, this.compiled.budget);
  }

  async close(): Promise<void> {
    await this.sessions.flushAll();
    await this.trail?.close();
    await this.store.close();
  }
}

const DEFAULT_TAINT_BYTES = 32 * 1024 * 1024;

/** The agent of a call when it is a plain object (a malformed one is the engine's to refuse). */
function plainAgent(agent: unknown): Agent | undefined {
  return agent !== null && typeof agent === "object" && !Array.isArray(agent) ? (agent as Agent) : undefined;
}

/**
 * A wrapped call's `args`: named positional values, or the one plain object it was given;
 * undefined when positional values cannot be named (the caller denies the call).
 */
function toArgs(
  values: unknown[],
  names: string[] | undefined,
  declared: string[],
  explicit: boolean,
): Record<string, unknown> | undefined {
  const [first] = values;
  // One plain object is the args, unless `params` says otherwise or the function's one parameter is itself a declared argument.
  const objectForm =
    values.length === 1 &&
    isPlainObject(first) &&
    !explicit &&
    (!names || (names.length === 1 && !declared.includes(names[0])));
  if (objectForm) return first as Record<string, unknown>;
  if (names) {
    // Values past the named ones would go unchecked: refuse the call.
    if (values.length > names.length) return undefined;
    const args: Record<string, unknown> = {};
    names.forEach((name, i) => {
      if (values[i] !== undefined) args[name] = values[i];
    });
    return args;
  }
  if (values.length === 0) return {};
  if (values.length === 1 && declared.length === 1) return { [declared[0]]: first };
  return undefined;
}

function isPlainObject(value: unknown): boolean {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * The parameter names of a function, read from its source: plain identifiers only (defaults
 * allowed); undefined for destructuring, rest parameters, or source that cannot be read (native,
 * bound). A destructured single parameter is the object form.
 */
export function parameterNames(fn: (...args: never[]) => unknown): string[] | undefined {
  let source: string;
  try {
    source = Function.prototype.toString.call(fn);
  } catch {
    return undefined;
  }
  if (source.includes("[native code]")) return undefined;
  const bare = /^(?:async\s+)?([A-Za-z_$][\w$]*)\s*=>/.exec(source);
  if (bare) return [bare[1]];
  const open = source.indexOf("(");
  if (open < 0) return undefined;
  const parts: string[] = [];
  let depth = 0;
  let current = "";
  let quote = "";
  for (let i = open + 1; i < source.length; i++) {
    const ch = source[i];
    if (quote) {
      current += ch;
      if (ch === "\\") current += source[++i] ?? "";
      else if (ch === quote) quote = "";
      continue;
    }
    if (ch === '"' || ch === "'" || ch === "`") quote = ch;
    else if (ch === "(" || ch === "[" || ch === "{") depth++;
    else if (ch === ")" || ch === "]" || ch === "}") {
      if (depth === 0) {
        parts.push(current);
        break;
      }
      depth--;
    } else if (ch === "," && depth === 0) {
      parts.push(current);
      current = "";
      continue;
    }
    current += ch;
  }
  const names: string[] = [];
  for (const part of parts) {
    const text = part
      .replace(/\/\*[\s\S]*?\*\//g, "")
      .replace(/\/\/.*$/gm, "")
      .trim();
    if (!text) continue;
    const name = /^([A-Za-z_$][\w$]*)\s*(?:=[\s\S]*)?$/.exec(text);
    if (!name) return undefined;
    names.push(name[1]);
  }
  return names;
}

export { hashCall } from "./hash-call.js";
export type { Agent };
