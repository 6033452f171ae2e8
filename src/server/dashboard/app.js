// @ts-check
// The toolwarden dashboard: plain DOM, no framework, no build step. Every value from the server is
// inserted as text (never as HTML): tool names and arguments come from agents. The JSDoc types are
// checked by `npm run lint` (tsconfig.dashboard.json); the file is served as it is.

/**
 * What the server sends (the wire shapes of src/server, as far as the dashboard reads them).
 * @typedef {"allow" | "flag" | "ask" | "deny"} Verdict
 * @typedef {Record<Verdict, number>} VerdictCounts
 * @typedef {{ code: string, message: string }} ErrorDetail
 * @typedef {{ error?: ErrorDetail, errors?: PolicyIssue[] }} ErrorBody
 * @typedef {{ file: string, line: number, col: number, message: string, help?: string }} PolicyIssue
 * @typedef {{ id: string, name: string, role: "agent" | "approver" | "admin", agent?: string }} Identity
 * @typedef {{ kind: string, time: string, seq?: number, session?: string, agent?: string, tool?: string,
 *   verdict?: Verdict, enforced?: false, rule?: string | null, reason?: string,
 *   approval?: { id: string, status: string, by?: string } }} AuditRecord
 * @typedef {{ records: AuditRecord[], next?: number }} AuditPage
 * @typedef {{ id: string, tool: string, server?: string, agent?: string, session?: string,
 *   rule: string | null, reason: string, argsSummary: string, createdAt: number, expiresAt: number }} Approval
 * @typedef {{ agent?: string, calls: number, verdicts: VerdictCounts, tools: Record<string, VerdictCounts>,
 *   spend: number, budget?: { max: number, remaining: number }, labelsSeen: string[],
 *   flowsBlocked: Array<{ tool: string, rule: string | null, labels: string[] }> }} SessionReport
 * @typedef {{ name: string, count: number }} NamedCount
 * @typedef {{ t: string } & VerdictCounts} SeriesRow
 * @typedef {{ series: SeriesRow[], totals: VerdictCounts, topDeniedTools: NamedCount[],
 *   topDeniedRules: NamedCount[], rules?: NamedCount[], neverFired?: string[] }} AuditStats
 * @typedef {{ name: string, hash: string, file: string, default: Verdict, fail: "open" | "closed",
 *   sources: Array<{ file: string, text: string }> }} ActivePolicy
 * @typedef {{ hash: string, name: string, origin: string, createdAt: string, createdBy: string,
 *   active: boolean }} PolicyVersionRow
 * @typedef {{ verdict: Verdict, rule?: string | null, reason?: string }} DryRunVerdict
 * @typedef {{ time: string, agent?: string, tool: string, before: DryRunVerdict, after: DryRunVerdict }} DryRunChange
 * @typedef {{ compared: number, changed: DryRunChange[], ruleChanged: number, note: string }} DryRunResult
 */

/**
 * The elements of index.html whose type matters to this script, by id; any other id is an HTMLElement.
 * @typedef {{ key: HTMLInputElement, "chart-range": HTMLSelectElement, "upload-source": HTMLTextAreaElement,
 *   "audit-form": HTMLFormElement, "session-view": HTMLDialogElement, "live-rows": HTMLTableSectionElement,
 *   "audit-rows": HTMLTableSectionElement }} TypedElements
 */

const KEY_STORAGE = "toolwarden.apiKey";
const MAX_LIVE_ROWS = 200;
/** @type {Verdict[]} */
const VERDICTS = ["allow", "flag", "ask", "deny"];
const SVG_NS = "http://www.w3.org/2000/svg";

const state = {
  key: sessionStorage.getItem(KEY_STORAGE) ?? "",
  /** @type {Identity | null} */
  identity: null,
  /** @type {AbortController | null} */
  stream: null,
  /** @type {number | undefined} */
  auditNext: undefined,
  /** Audit pages shown: the tab follows the live stream only while it shows the first. */
  auditPages: 0,
  /** @type {Set<string>} */
  pendingIds: new Set(),
  /** Decisions shown in Live, so history loaded after the stream starts is not shown twice. */
  /** @type {Set<string>} */
  liveKeys: new Set(),
};

/**
 * An element of the page by id; a missing one is a bug in the page, so it throws at once.
 * @template {string} K
 * @param {K} id
 * @returns {K extends keyof TypedElements ? TypedElements[K] : HTMLElement}
 */
const $ = (id) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no element #${id}`);
  return /** @type {any} */ (el);
};

/** @typedef {Node | string | number | null | undefined | Child[]} Child */

/**
 * Creates an element; children are nodes or text.
 * @param {string} tag
 * @param {Record<string, unknown>} attrs
 * @param {...Child} children
 * @returns {HTMLElement}
 */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.className = String(value);
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), /** @type {EventListener} */ (value));
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

/**
 * Creates an SVG element.
 * @param {string} tag
 * @param {Record<string, unknown>} attrs
 * @param {...Child} children
 * @returns {SVGElement}
 */
function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  append(el, children);
  return el;
}

/**
 * Appends children (nested arrays flattened; null and undefined left out), text as text.
 * @param {Element} el
 * @param {Child[]} children
 */
function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/**
 * A reason as text with its `code` spans as <code> (reasons quote names in backticks).
 * @param {string | undefined} text
 */
function reasonNodes(text) {
  return String(text ?? "")
    .split(/`([^`]*)`/)
    .map((part, i) => (i % 2 ? h("code", {}, part) : part))
    .filter((part) => part !== "");
}

/**
 * A session id that opens the session view.
 * @param {string | undefined} id
 */
function sessionLink(id) {
  if (!id) return "";
  return h("button", { type: "button", class: "link mono", onclick: () => showSession(id) }, id);
}

/**
 * @param {Verdict | undefined} verdict
 * @param {false} [enforced]
 */
function verdictBadge(verdict, enforced) {
  if (!verdict) return "";
  // A verdict the policy only observed (mode: observe, enforce: false): the call ran; shown apart.
  if (enforced === false)
    return h(
      "span",
      { class: `verdict v-${verdict} observed`, title: "observed, not enforced: the call ran" },
      `${verdict} (observed)`,
    );
  return h("span", { class: `verdict v-${verdict}` }, verdict);
}

/** @param {string | number | undefined} value */
function time(value) {
  const date = typeof value === "number" ? new Date(value) : new Date(String(value));
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString();
}

/** @param {string | number | undefined} value */
function dateTime(value) {
  const date = typeof value === "number" ? new Date(value) : new Date(String(value));
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleString();
}

/** @param {string | undefined} hash */
function short(hash) {
  return hash ? String(hash).slice(0, 12) : "";
}

/** @param {string} text */
function announce(text) {
  const el = $("announcer");
  el.textContent = "";
  // A new node each time, so screen readers announce repeated messages too.
  setTimeout(() => {
    el.textContent = text;
  }, 50);
}

/** The message of anything thrown (an Error's, else its text). */
function messageOf(/** @type {unknown} */ error) {
  return error instanceof Error ? error.message : String(error);
}

class ApiError extends Error {
  /**
   * @param {number} status
   * @param {ErrorBody | undefined} body
   */
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

/**
 * Calls the API with the key. Throws `ApiError` on an error status unless `allowError`, which
 * answers `{status, body}` instead of the body.
 * @param {string} path
 * @param {{ method?: string, body?: unknown, allowError?: boolean }} [options]
 * @returns {Promise<any>}
 */
async function api(path, options = {}) {
  /** @type {Record<string, string>} */
  const headers = { Authorization: `Bearer ${state.key}` };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: options.method ?? "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.text();
  const body = text ? JSON.parse(text) : undefined;
  if (response.status === 401) {
    signOut("The key was refused. Sign in again.");
    throw new ApiError(401, body);
  }
  if (!response.ok && !options.allowError) throw new ApiError(response.status, body);
  return options.allowError ? { status: response.status, body } : body;
}

// ---- sign in -------------------------------------------------------------------------------

/** @param {string} key */
async function signIn(key) {
  state.key = key;
  /** @type {Identity} */
  const identity = await api("/v1/whoami");
  if (identity.role === "agent") {
    state.key = "";
    throw new Error("An agent key cannot use the dashboard: use an approver or admin key.");
  }
  sessionStorage.setItem(KEY_STORAGE, key);
  state.identity = identity;
  $("signin").hidden = true;
  $("app").hidden = false;
  $("sign-out").hidden = false;
  $("who").textContent = `${identity.name} · ${identity.role}`;
  $("admin-policy").hidden = identity.role !== "admin";
  connect();
  await Promise.all([loadLiveHistory(), loadApprovals(), loadPolicy(), searchAudit()]);
}

function signOut(message = "") {
  sessionStorage.removeItem(KEY_STORAGE);
  state.key = "";
  state.identity = null;
  state.stream?.abort();
  state.stream = null;
  state.liveKeys.clear();
  $("live-rows").replaceChildren();
  $("app").hidden = true;
  $("signin").hidden = false;
  $("sign-out").hidden = true;
  $("who").textContent = "";
  $("signin-error").textContent = message;
  setConn("Not signed in", "");
  $("key").focus();
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("signin-error").textContent = "";
  try {
    await signIn($("key").value.trim());
    $("key").value = "";
    $("tab-live").focus();
  } catch (error) {
    $("signin-error").textContent = messageOf(error);
  }
});

$("sign-out").addEventListener("click", () => signOut());

// ---- tabs (WAI-ARIA tabs pattern: arrows, Home, End) ----------------------------------------

const tabs = [...document.querySelectorAll('[role="tab"]')].map((tab) => /** @type {HTMLElement} */ (tab));

/**
 * @param {HTMLElement} tab
 * @param {boolean} [focus]
 */
function selectTab(tab, focus = true) {
  for (const other of tabs) {
    const selected = other === tab;
    other.setAttribute("aria-selected", String(selected));
    other.tabIndex = selected ? 0 : -1;
    $(other.getAttribute("aria-controls") ?? "").hidden = !selected;
  }
  if (focus) tab.focus();
  if (tab.id === "tab-charts") loadCharts();
  if (tab.id === "tab-approvals") loadApprovals();
  if (tab.id === "tab-policy") loadPolicy();
}

for (const tab of tabs) {
  tab.addEventListener("click", () => selectTab(tab));
  tab.addEventListener("keydown", (event) => {
    const i = tabs.indexOf(tab);
    /** @type {Record<string, HTMLElement | undefined>} */
    const keys = {
      ArrowRight: tabs[(i + 1) % tabs.length],
      ArrowLeft: tabs[(i - 1 + tabs.length) % tabs.length],
      Home: tabs[0],
      End: tabs[tabs.length - 1],
    };
    const next = keys[event.key];
    if (next) {
      event.preventDefault();
      selectTab(next);
    }
  });
}

/** @param {string} panelId */
function visible(panelId) {
  return !$(panelId).hidden;
}

// ---- live stream (SSE read with fetch, so the key goes in a header, not the URL) -----------

/**
 * @param {string} text
 * @param {string} kind
 */
function setConn(text, kind) {
  const el = $("conn");
  el.textContent = text;
  el.className = `conn ${kind}`;
}

function connect() {
  state.stream?.abort();
  const controller = new AbortController();
  state.stream = controller;
  let delay = 1000;
  const run = async () => {
    while (!controller.signal.aborted) {
      try {
        const response = await fetch("/v1/events", {
          headers: { Authorization: `Bearer ${state.key}`, Accept: "text/event-stream" },
          signal: controller.signal,
        });
        if (response.status === 401) return signOut("The key was refused. Sign in again.");
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        setConn("Live", "live");
        delay = 1000;
        await readEvents(response.body, controller.signal);
      } catch (error) {
        if (controller.signal.aborted) return;
        setConn("Reconnecting…", "down");
        void error;
      }
      if (controller.signal.aborted) return;
      setConn("Reconnecting…", "down");
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 15000);
      // Catch up on what the gap may have hidden.
      loadApprovals();
    }
  };
  run();
}

/**
 * Reads server-sent events from a response body until it ends or `signal` aborts.
 * @param {ReadableStream<Uint8Array<ArrayBuffer>>} body
 * @param {AbortSignal} signal
 */
async function readEvents(body, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  while (!signal.aborted) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end = buffer.indexOf("\n\n");
    while (end >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf("\n\n");
      let type = "message";
      const data = [];
      for (const line of frame.split("\n")) {
        if (line.startsWith("event:")) type = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent(type, JSON.parse(data.join("\n")));
    }
  }
}

/** @type {ReturnType<typeof setTimeout> | undefined} */
let chartTimer;
/**
 * @param {string} type
 * @param {any} payload
 */
function onEvent(type, payload) {
  if (type === "audit") {
    /** @type {AuditRecord} */
    const event = payload.event;
    if (event.kind === "decision") addLiveRow(event);
    followAudit();
    if (event.kind === "approval" || (event.kind === "decision" && event.verdict === "ask")) loadApprovals();
    if (visible("panel-charts")) {
      clearTimeout(chartTimer);
      chartTimer = setTimeout(loadCharts, 1000);
    }
  } else if (type === "approval") {
    loadApprovals();
  } else if (type === "policy") {
    loadPolicy();
    if (payload.action === "reload_rejected")
      announce("A policy file change was rejected; the active policy stays.");
  } else if (type === "overflow") {
    // The server dropped this stream; the loop reconnects.
  }
}

/** @param {AuditRecord} event */
function liveKey(event) {
  return [event.time, event.session, event.tool, event.verdict, event.rule].join("\u0000");
}

/**
 * A decision in Live: a streamed one on top; one from history (`older`) below what is shown.
 * @param {AuditRecord} event
 * @param {boolean} [older]
 */
function addLiveRow(event, older = false) {
  const key = liveKey(event);
  if (state.liveKeys.has(key)) return;
  state.liveKeys.add(key);
  const tbody = $("live-rows");
  const row = h(
    "tr",
    older ? {} : { class: "fresh" },
    h("td", {}, h("time", { datetime: event.time }, time(event.time))),
    h("td", {}, verdictBadge(event.verdict, event.enforced)),
    h("td", { class: "mono" }, event.tool ?? ""),
    h("td", {}, event.agent ?? ""),
    h("td", {}, sessionLink(event.session)),
    h("td", { class: "mono" }, event.rule ?? "default"),
    h("td", { class: "reason" }, ...reasonNodes(event.reason)),
  );
  if (older) tbody.append(row);
  else tbody.prepend(row);
  while (tbody.rows.length > MAX_LIVE_ROWS) tbody.deleteRow(-1);
  $("live-empty").hidden = true;
}

/** The latest decisions from the audit trail, so Live is not empty after a reload. */
async function loadLiveHistory() {
  try {
    /** @type {AuditPage} */
    const { records } = await api("/v1/audit?kind=decision&limit=50");
    for (const record of records) addLiveRow(record, true);
  } catch {
    // Live still streams; history is a convenience.
  }
}

/** @type {ReturnType<typeof setTimeout> | undefined} */
let auditTimer;
/** Refreshes the Audit tab as records arrive, while it shows its first page. */
function followAudit() {
  if (state.auditPages > 1) {
    $("audit-status").textContent = "New records arrived; search again to see them.";
    return;
  }
  clearTimeout(auditTimer);
  auditTimer = setTimeout(() => searchAudit(), 300);
}

// ---- session view ---------------------------------------------------------------------------

/** @param {string} id */
async function showSession(id) {
  const dialog = $("session-view");
  $("session-title").textContent = `Session ${id}`;
  const body = $("session-body");
  body.replaceChildren(h("p", {}, "Loading…"));
  if (!dialog.open) dialog.showModal();
  try {
    /** @type {SessionReport} */
    const report = await api(`/v1/sessions/${encodeURIComponent(id)}`);
    const verdicts = VERDICTS.map((v) => `${report.verdicts?.[v] ?? 0} ${v}`).join(", ");
    body.replaceChildren(
      h(
        "dl",
        { class: "meta" },
        h("dt", {}, "Agent"),
        h("dd", {}, report.agent ?? "none"),
        h("dt", {}, "Calls"),
        h("dd", {}, `${report.calls} calls: ${verdicts}`),
        h("dt", {}, "Labels seen"),
        h("dd", {}, report.labelsSeen?.length ? report.labelsSeen.join(", ") : "none"),
        h("dt", {}, "Spend"),
        h("dd", {}, report.budget ? `${report.spend} of ${report.budget.max}` : String(report.spend ?? 0)),
      ),
      h("h3", {}, "Flows blocked"),
      report.flowsBlocked?.length
        ? h(
            "ul",
            {},
            ...report.flowsBlocked.map((flow) =>
              h(
                "li",
                {},
                h("span", { class: "mono" }, flow.tool),
                ` by ${flow.rule ?? "default"} (${flow.labels.join(", ")})`,
              ),
            ),
          )
        : h("p", {}, "None."),
      h("h3", {}, "Calls by tool"),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "data" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              h("th", { scope: "col" }, "Tool"),
              ...VERDICTS.map((v) => h("th", { scope: "col" }, v)),
            ),
          ),
          h(
            "tbody",
            {},
            ...Object.entries(report.tools ?? {}).map(([tool, counts]) =>
              h(
                "tr",
                {},
                h("td", { class: "mono" }, tool),
                ...VERDICTS.map((v) => h("td", {}, String(counts[v] ?? 0))),
              ),
            ),
          ),
        ),
      ),
    );
  } catch (error) {
    body.replaceChildren(h("p", { class: "error" }, `Could not load the session: ${messageOf(error)}`));
  }
}

$("session-close").addEventListener("click", () => $("session-view").close());

// ---- approvals -----------------------------------------------------------------------------

/** @type {Promise<void> | undefined} */
let approvalsLoading;
async function loadApprovals() {
  if (!state.key) return;
  // Coalesce bursts of events into one request at a time.
  if (approvalsLoading) return approvalsLoading;
  approvalsLoading = (async () => {
    try {
      /** @type {{ approvals: Approval[] }} */
      const { approvals } = await api("/v1/approvals?status=pending");
      renderApprovals(approvals);
    } catch {
      // The stream's reconnect retries.
    } finally {
      approvalsLoading = undefined;
    }
  })();
  return approvalsLoading;
}

/** @param {Approval[]} approvals */
function renderApprovals(approvals) {
  const list = $("approvals-list");
  const fresh = approvals.filter((a) => !state.pendingIds.has(a.id));
  state.pendingIds = new Set(approvals.map((a) => a.id));
  for (const approval of fresh)
    announce(`New approval request: ${approval.tool} from ${approval.agent ?? "an agent"}`);
  const count = $("pending-count");
  count.textContent = String(approvals.length);
  count.classList.toggle("hot", approvals.length > 0);
  $("approvals-empty").hidden = approvals.length > 0;
  // Cards still pending are kept as they are, so a reason being typed, the focus, or a click in
  // progress survive another approval arriving: only cards decided elsewhere go, new ones come.
  /** @type {Map<string, Element>} */
  const kept = new Map();
  for (const card of [...list.children]) {
    const id = card.getAttribute("data-approval");
    if (id !== null && state.pendingIds.has(id)) kept.set(id, card);
    else card.remove();
  }
  let next = list.firstElementChild;
  for (const approval of approvals) {
    const card = kept.get(approval.id);
    if (card === next) next = next?.nextElementSibling ?? null;
    else list.insertBefore(card ?? approvalCard(approval), next);
  }
}

/** @param {Approval} approval */
function approvalCard(approval) {
  const titleId = `approval-${approval.id}`;
  const reasonId = `reason-${approval.id}`;
  const who = approval.agent ?? "an unnamed agent";
  /** @param {"approve" | "deny"} action */
  const decide = (action) => async (/** @type {Event} */ event) => {
    const card = /** @type {HTMLElement} */ (event.currentTarget).closest("article");
    if (!card) return;
    for (const button of card.querySelectorAll("button")) button.disabled = true;
    const reason = card.querySelector("input")?.value.trim();
    try {
      await api(`/v1/approvals/${encodeURIComponent(approval.id)}/${action}`, {
        method: "POST",
        body: reason ? { reason } : {},
      });
      announce(`${action === "approve" ? "Approved" : "Denied"} ${approval.tool} for ${who}`);
    } catch (error) {
      announce(`Could not ${action}: ${messageOf(error)}`);
      // The card is kept while the approval is pending: the approver may try again.
      for (const button of card.querySelectorAll("button")) button.disabled = false;
    }
    await loadApprovals();
  };
  let args = approval.argsSummary;
  try {
    args = JSON.stringify(JSON.parse(approval.argsSummary), null, 2);
  } catch {
    // a truncated summary is shown as it is
  }
  return h(
    "article",
    { class: "card approval", "aria-labelledby": titleId, "data-approval": approval.id },
    h("h3", { id: titleId }, h("span", { class: "mono" }, approval.tool), ` requested by ${who}`),
    h(
      "dl",
      {},
      h("dt", {}, "Why"),
      h("dd", {}, ...reasonNodes(approval.reason)),
      h("dt", {}, "Rule"),
      h("dd", { class: "mono" }, approval.rule ?? "default"),
      h("dt", {}, "Session"),
      h("dd", {}, approval.session ? sessionLink(approval.session) : "none"),
      approval.server ? [h("dt", {}, "Server"), h("dd", { class: "mono" }, approval.server)] : null,
      h("dt", {}, "Requested"),
      h("dd", {}, dateTime(approval.createdAt)),
      h("dt", {}, "Expires"),
      h("dd", {}, dateTime(approval.expiresAt)),
      h("dt", {}, "Arguments"),
      h("dd", {}, h("pre", {}, args)),
    ),
    h(
      "div",
      { class: "decide-row" },
      h(
        "div",
        { class: "field" },
        h("label", { for: reasonId }, "Reason (optional, recorded in the audit trail)"),
        h("input", { id: reasonId, type: "text", maxlength: 2000 }),
      ),
      h("button", { type: "button", class: "approve", onclick: decide("approve") }, "Approve"),
      h("button", { type: "button", class: "deny", onclick: decide("deny") }, "Deny"),
    ),
  );
}

// ---- audit search --------------------------------------------------------------------------

/** @param {number | undefined} before */
function auditParams(before) {
  const form = new FormData($("audit-form"));
  const params = new URLSearchParams();
  for (const [name, value] of form) {
    if (!value) continue;
    if (name === "since" || name === "until") params.set(name, new Date(String(value)).toISOString());
    else params.set(name, String(value));
  }
  params.set("limit", "50");
  if (before) params.set("before", String(before));
  return params;
}

async function searchAudit(more = false) {
  const status = $("audit-status");
  try {
    /** @type {AuditPage} */
    const page = await api(`/v1/audit?${auditParams(more ? state.auditNext : undefined)}`);
    const tbody = $("audit-rows");
    if (!more) tbody.replaceChildren();
    for (const record of page.records) tbody.append(...auditRows(record));
    state.auditPages = more ? state.auditPages + 1 : 1;
    state.auditNext = page.next;
    $("audit-more").hidden = page.next === undefined;
    status.textContent = `${tbody.querySelectorAll("tr.record").length} records shown${page.next ? "; more are older" : ""}.`;
  } catch (error) {
    status.textContent = `Search failed: ${messageOf(error)}`;
  }
}

/** @param {AuditRecord} record */
function auditRows(record) {
  const detailsId = `audit-details-${record.seq}`;
  const details = h(
    "tr",
    { id: detailsId, hidden: true },
    h("td", { colspan: 8, class: "details" }, h("pre", {}, JSON.stringify(record, null, 2))),
  );
  const toggle = h(
    "button",
    {
      type: "button",
      class: "quiet",
      "aria-expanded": "false",
      "aria-controls": detailsId,
      "aria-label": `Details of record ${record.seq}`,
      onclick: (/** @type {Event} */ event) => {
        const button = /** @type {HTMLElement} */ (event.currentTarget);
        const open = button.getAttribute("aria-expanded") === "true";
        button.setAttribute("aria-expanded", String(!open));
        details.hidden = open;
      },
    },
    "Details",
  );
  const approval = record.approval
    ? `${record.approval.status}${record.approval.by ? ` by ${record.approval.by}` : ""}`
    : "";
  return [
    h(
      "tr",
      { class: "record" },
      h("td", { class: "mono" }, record.seq),
      h("td", {}, h("time", { datetime: record.time }, dateTime(record.time))),
      h("td", {}, record.kind === "decision" ? verdictBadge(record.verdict, record.enforced) : record.kind),
      h("td", { class: "mono" }, record.tool ?? ""),
      h("td", {}, record.agent ?? ""),
      h("td", { class: "mono" }, [record.rule ?? "", approval].filter(Boolean).join(" · ")),
      h("td", { class: "reason" }, ...reasonNodes(record.reason)),
      h("td", {}, toggle),
    ),
    details,
  ];
}

$("audit-form").addEventListener("submit", (event) => {
  event.preventDefault();
  searchAudit();
});
$("audit-form").addEventListener("reset", () => setTimeout(() => searchAudit(), 0));
$("audit-more").addEventListener("click", () => searchAudit(true));

// ---- charts (inline SVG) -------------------------------------------------------------------

async function loadCharts() {
  const minutes = Number($("chart-range").value);
  const bucket = minutes <= 60 ? "minute" : "hour";
  const since = new Date(Date.now() - minutes * 60_000);
  try {
    /** @type {AuditStats} */
    const stats = await api(
      `/v1/audit/stats?since=${encodeURIComponent(since.toISOString())}&bucket=${bucket}`,
    );
    const total = VERDICTS.reduce((sum, v) => sum + stats.totals[v], 0);
    $("chart-totals").textContent =
      `${total} decisions: ${VERDICTS.map((v) => `${stats.totals[v]} ${v}`).join(", ")}`;
    $("chart-time").replaceChildren(timeChart(stats, since, bucket));
    $("chart-tools").replaceChildren(
      barChart(stats.topDeniedTools, "tools-title", "No denied tools in this range."),
    );
    $("chart-rules").replaceChildren(
      barChart(stats.topDeniedRules, "rules-title", "No denied rules in this range."),
    );
    $("chart-rules-all").replaceChildren(
      barChart(
        stats.rules ?? [],
        "rules-all-title",
        "No rule decided in this range.",
        "decided",
        "bar-allow",
      ),
    );
    // Rules that never decided are the ones a reviewer should question.
    const never = stats.neverFired ?? [];
    $("never-fired").textContent = never.length
      ? `Never fired in this range (${never.length}): ${never.join(", ")}`
      : "Every rule of the active policy decided at least once in this range.";
  } catch (error) {
    $("chart-totals").textContent = `Could not load the charts: ${messageOf(error)}`;
  }
}

$("chart-range").addEventListener("change", loadCharts);

/** @typedef {"minute" | "hour"} Bucket */

/**
 * Every bucket in the range, empty ones included, keyed like the server's (`YYYY-MM-DDTHH:MM` in UTC).
 * @param {Date} since
 * @param {Bucket} bucket
 */
function bucketsFrom(since, bucket) {
  const step = bucket === "minute" ? 60_000 : 3_600_000;
  const width = bucket === "minute" ? 16 : 13;
  const keys = [];
  for (let t = Math.floor(since.getTime() / step) * step; t <= Date.now(); t += step) {
    keys.push(new Date(t).toISOString().slice(0, width));
  }
  return keys;
}

/**
 * @param {AuditStats} stats
 * @param {Date} since
 * @param {Bucket} bucket
 */
function timeChart(stats, since, bucket) {
  const byKey = new Map(stats.series.map((row) => [row.t, row]));
  const keys = bucketsFrom(since, bucket);
  const rows = keys.map((t) => byKey.get(t) ?? { t, allow: 0, flag: 0, ask: 0, deny: 0 });
  const max = Math.max(1, ...rows.map((r) => VERDICTS.reduce((s, v) => s + r[v], 0)));
  const W = 760;
  const H = 220;
  const left = 40;
  const bottom = 24;
  const plotW = W - left - 8;
  const plotH = H - bottom - 8;
  const barW = plotW / rows.length;
  const label = (/** @type {string} */ t) => {
    const d = new Date(`${t}${bucket === "minute" ? ":00Z" : ":00:00Z"}`);
    return bucket === "minute"
      ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
      : d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit" });
  };
  const total = VERDICTS.reduce((s, v) => s + stats.totals[v], 0);
  const chart = svg(
    "svg",
    { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": "time-title time-desc" },
    svg(
      "desc",
      { id: "time-desc" },
      `${total} decisions in ${rows.length} ${bucket}s; busiest ${bucket}: ${max}.`,
    ),
    svg("line", { class: "grid", x1: left, x2: W - 8, y1: 8, y2: 8 }),
    svg("line", { class: "grid", x1: left, x2: W - 8, y1: 8 + plotH, y2: 8 + plotH }),
    svg("text", { x: left - 6, y: 12, "text-anchor": "end" }, String(max)),
    svg("text", { x: left - 6, y: 8 + plotH, "text-anchor": "end" }, "0"),
  );
  rows.forEach((row, i) => {
    let y = 8 + plotH;
    const parts = [];
    for (const verdict of VERDICTS) {
      const height = (row[verdict] / max) * plotH;
      if (height <= 0) continue;
      y -= height;
      parts.push(
        svg("rect", {
          class: `bar-${verdict}`,
          x: (left + i * barW + 0.5).toFixed(1),
          y: y.toFixed(1),
          width: Math.max(1, barW - 1).toFixed(1),
          height: height.toFixed(1),
        }),
      );
    }
    const summary =
      VERDICTS.filter((v) => row[v])
        .map((v) => `${row[v]} ${v}`)
        .join(", ") || "none";
    chart.append(svg("g", {}, svg("title", {}, `${label(row.t)}: ${summary}`), ...parts));
  });
  const ticks = Math.min(6, rows.length);
  for (let k = 0; k < ticks; k++) {
    const i = Math.round((k * (rows.length - 1)) / Math.max(1, ticks - 1));
    // The first and last labels hug the edges so they are not cut off.
    const anchor = k === 0 ? "start" : k === ticks - 1 ? "end" : "middle";
    const x = k === 0 ? left : k === ticks - 1 ? W - 8 : left + i * barW + barW / 2;
    chart.append(svg("text", { x, y: H - 6, "text-anchor": anchor }, label(rows[i].t)));
  }
  const legend = h(
    "ul",
    { class: "legend", "aria-label": "Legend" },
    VERDICTS.map((v) => h("li", {}, h("span", { class: `swatch s-${v}`, "aria-hidden": "true" }), v)),
  );
  const table = h(
    "details",
    { class: "data-table" },
    h("summary", {}, "Show the numbers"),
    h(
      "table",
      { class: "data" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, bucket),
          VERDICTS.map((v) => h("th", { scope: "col" }, v)),
        ),
      ),
      h(
        "tbody",
        {},
        rows
          .filter((r) => VERDICTS.some((v) => r[v]))
          .map((r) =>
            h(
              "tr",
              {},
              h("th", { scope: "row" }, label(r.t)),
              VERDICTS.map((v) => h("td", {}, r[v])),
            ),
          ),
      ),
    ),
  );
  return h("div", {}, chart, legend, table);
}

/**
 * @param {NamedCount[]} items
 * @param {string} titleId
 * @param {string} empty
 */
function barChart(items, titleId, empty, what = "denied", barClass = "bar-deny") {
  if (!items.length) return h("p", { class: "empty" }, empty);
  const W = 420;
  const rowH = 26;
  const labelW = 170;
  const H = items.length * rowH + 4;
  const max = Math.max(...items.map((i) => i.count));
  const chart = svg("svg", {
    class: "chart",
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    "aria-labelledby": titleId,
  });
  items.forEach((item, i) => {
    const y = i * rowH + 2;
    const width = ((W - labelW - 50) * item.count) / max;
    const name = item.name.length > 24 ? `${item.name.slice(0, 23)}…` : item.name;
    chart.append(
      svg(
        "g",
        {},
        svg("title", {}, `${item.name}: ${item.count} ${what}`),
        svg("text", { class: "label", x: labelW - 8, y: y + 16, "text-anchor": "end" }, name),
        svg("rect", {
          class: barClass,
          x: labelW,
          y: y + 4,
          width: Math.max(2, width).toFixed(1),
          height: rowH - 8,
          rx: 2,
        }),
        svg("text", { class: "label", x: labelW + width + 6, y: y + 16 }, String(item.count)),
      ),
    );
  });
  return chart;
}

// ---- policy --------------------------------------------------------------------------------

async function loadPolicy() {
  if (!state.key) return;
  try {
    /** @type {[ActivePolicy, { versions: PolicyVersionRow[] }]} */
    const [policy, { versions }] = await Promise.all([api("/v1/policy"), api("/v1/policy/versions")]);
    $("policy-badge").textContent = `policy ${policy.name} · ${short(policy.hash)}`;
    $("policy-meta").replaceChildren(
      h("dt", {}, "Name"),
      h("dd", {}, policy.name),
      h("dt", {}, "Hash"),
      h("dd", { class: "mono" }, policy.hash),
      h("dt", {}, "File"),
      h("dd", { class: "mono" }, policy.file),
      h("dt", {}, "Default"),
      h("dd", {}, verdictBadge(policy.default)),
      h("dt", {}, "On internal error"),
      h("dd", {}, policy.fail === "closed" ? "deny (fail closed)" : "allow and flag (fail open)"),
    );
    $("policy-sources").replaceChildren(
      ...policy.sources.map((source) =>
        h(
          "section",
          { class: "source" },
          h("h3", {}, source.file),
          h("pre", { tabindex: 0 }, h("code", {}, source.text)),
        ),
      ),
    );
    const admin = state.identity?.role === "admin";
    // Rolling back needs a version before the active one.
    $("rollback").hidden = versions.length < 2;
    $("version-rows").replaceChildren(
      ...versions.map((v) =>
        h(
          "tr",
          {},
          h("td", { class: "mono" }, short(v.hash)),
          h("td", {}, v.name),
          h("td", {}, v.origin),
          h("td", {}, dateTime(v.createdAt)),
          h("td", {}, v.createdBy),
          h(
            "td",
            {},
            v.active
              ? h("strong", {}, "active")
              : admin
                ? h(
                    "button",
                    {
                      type: "button",
                      "aria-label": `Activate version ${short(v.hash)}`,
                      onclick: () => activate(v.hash),
                    },
                    "Activate",
                  )
                : "",
          ),
        ),
      ),
    );
  } catch (error) {
    $("policy-meta").replaceChildren(h("dd", {}, `Could not load the policy: ${messageOf(error)}`));
  }
}

/** @param {...(Node | string)} nodes */
function showResult(...nodes) {
  $("upload-result").replaceChildren(...nodes);
}

/** @param {ErrorBody | undefined} body */
function showPolicyErrors(body) {
  const errors = body?.errors ?? [];
  showResult(
    h("p", { class: "error" }, "The policy is not valid:"),
    h(
      "ul",
      {},
      errors.map((e) =>
        h(
          "li",
          {},
          h("code", {}, `${e.file}:${e.line}:${e.col}`),
          ` ${e.message}`,
          e.help ? ` (${e.help})` : "",
        ),
      ),
    ),
  );
}

/** @param {string} hash */
async function activate(hash) {
  const { status, body } = await api(`/v1/policy/versions/${hash}/activate`, {
    method: "POST",
    allowError: true,
  });
  if (status === 200) announce(`Activated policy ${short(hash)}`);
  else announce(`Could not activate: ${body?.error?.message}`);
  await loadPolicy();
}

$("rollback").addEventListener("click", async () => {
  const { status, body } = await api("/v1/policy/rollback", { method: "POST", allowError: true });
  showResult(
    status === 200
      ? h("p", { class: "ok" }, `Rolled back from ${short(body.from)} to ${short(body.to)}.`)
      : h("p", { class: "error" }, body?.error?.message ?? `HTTP ${status}`),
  );
  await loadPolicy();
});

$("upload-form").addEventListener("click", async (event) => {
  const action = /** @type {Element} */ (event.target).closest("button")?.dataset.action;
  if (action !== "validate" && action !== "dry-run" && action !== "upload" && action !== "activate") return;
  const source = $("upload-source").value;
  if (!source.trim()) {
    showResult(h("p", { class: "error" }, "Paste a policy first."));
    $("upload-source").focus();
    return;
  }
  /** @type {Record<typeof action, [path: string, payload: { source: string, activate?: boolean }]>} */
  const requests = {
    validate: ["/v1/policy/validate", { source }],
    "dry-run": ["/v1/policy/dry-run", { source }],
    upload: ["/v1/policy/versions", { source }],
    activate: ["/v1/policy/versions", { source, activate: true }],
  };
  const [path, payload] = requests[action];
  const { status, body } = await api(path, { method: "POST", body: payload, allowError: true });
  if (status === 422) return showPolicyErrors(body);
  if (status >= 400) return showResult(h("p", { class: "error" }, body?.error?.message ?? `HTTP ${status}`));
  if (action === "validate")
    showResult(h("p", { class: "ok" }, `Valid: ${body.name} (${short(body.hash)}).`));
  if (action === "dry-run") showResult(dryRunResult(body));
  if (action === "upload" || action === "activate") {
    showResult(
      h("p", { class: "ok" }, `Stored ${short(body.version.hash)}${body.change ? " and activated it" : ""}.`),
    );
    await loadPolicy();
  }
});

/** @param {DryRunResult} result */
function dryRunResult(result) {
  const summary = h(
    "p",
    { class: result.changed.length ? "" : "ok" },
    `${result.compared} recent calls compared: ${result.changed.length} would change verdict` +
      `${result.ruleChanged ? `, ${result.ruleChanged} would be decided by another rule` : ""}.`,
  );
  const note = h("p", { class: "help" }, `Source: ${result.note}.`);
  if (!result.changed.length) return h("div", {}, summary, note);
  return h(
    "div",
    {},
    summary,
    note,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "data" },
        h("caption", { class: "sr-only" }, "Decisions that would change"),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Time", "Agent", "Tool", "Now", "With this policy", "Reason"].map((t) =>
              h("th", { scope: "col" }, t),
            ),
          ),
        ),
        h(
          "tbody",
          {},
          result.changed.map((c) =>
            h(
              "tr",
              {},
              h("td", {}, dateTime(c.time)),
              h("td", {}, c.agent ?? ""),
              h("td", { class: "mono" }, c.tool),
              h("td", {}, verdictBadge(c.before.verdict), " ", c.before.rule ?? ""),
              h("td", {}, verdictBadge(c.after.verdict), " ", c.after.rule ?? ""),
              h("td", { class: "reason" }, c.after.reason),
            ),
          ),
        ),
      ),
    ),
  );
}

// ---- start ---------------------------------------------------------------------------------

if (state.key) {
  signIn(state.key).catch(() => signOut("Sign in again."));
} else {
  $("key").focus();
}
