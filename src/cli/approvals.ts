import { readFileSync } from "node:fs";
import { userInfo } from "node:os";
import type { Approval, ApprovalStatus } from "../stores/types.js";
import { AUDIT_KEY_OPTION, CliError, parseFlags, STORE_OPTION, table } from "./util.js";
import type { Command } from "./util.js";
import { help } from "./validate.js";
import { approvalEvent } from "../approvals/approvals.js";

const USAGE =
  "toolwarden approvals list|approve ID|deny ID (--store URL | --server URL [--key-file FILE]) [--reason TEXT] [--by NAME] [--status S] [--json] [--audit LOG [--audit-key-file FILE]]";

const STATUSES = ["pending", "approved", "denied", "expired", "used", "all"];

/** Where approvals live: the state store itself, or a server's API. */
interface ApprovalsBackend {
  list(status: string): Promise<Approval[]>;
  decide(id: string, status: "approved" | "denied", reason: string | undefined): Promise<Approval>;
  close(): Promise<void>;
}

/** `toolwarden approvals`: list pending calls and approve or deny them, from a store URL or a server. */
export const approvals: Command = {
  summary: "list, approve or deny pending calls (against a state store or a server)",
  usage: USAGE,
  options: [
    "list | approve ID | deny ID   what to do; ID is the approval id or a unique prefix of it",
    STORE_OPTION,
    "--server URL            a running `toolwarden serve` (TOOLWARDEN_SERVER), e.g. http://127.0.0.1:8080",
    "--key-file FILE         with --server: a file holding an approver or admin API key (or TOOLWARDEN_API_KEY)",
    "--reason TEXT           why; recorded in the audit trail with the approver",
    "--by NAME               the approver's name with --store (default: the OS user)",
    "--status S              list: pending (default), approved, denied, expired, used or all",
    "--json                  print JSON",
    "--audit LOG             with --store: the audit log that records the decision (required to decide)",
    AUDIT_KEY_OPTION,
  ],
  async run(argv) {
    const { values, positionals } = parseFlags(
      argv,
      {
        store: { type: "string" },
        server: { type: "string" },
        "key-file": { type: "string" },
        reason: { type: "string" },
        by: { type: "string" },
        status: { type: "string" },
        json: { type: "boolean" },
        audit: { type: "string" },
        "audit-key-file": { type: "string" },
      },
      this.usage,
    );
    if (values.help) return help(this);
    const [action, id, ...extra] = positionals;
    if (!action || !["list", "approve", "deny"].includes(action))
      throw new CliError(`expected list, approve or deny\nusage: ${USAGE}`);
    if (action !== "list" && !id)
      throw new CliError(`\`approvals ${action}\` needs the approval id\nusage: ${USAGE}`);
    if (extra.length) throw new CliError(`unexpected argument \`${extra[0]}\`\nusage: ${USAGE}`);
    const status = values.status ?? "pending";
    if (!STATUSES.includes(status)) throw new CliError(`--status must be one of ${STATUSES.join(", ")}`);

    const backend = await openBackend(values, action !== "list");
    try {
      if (action === "list") {
        const list = await backend.list(status);
        if (values.json) process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
        else if (!list.length) process.stdout.write(`no ${status === "all" ? "" : `${status} `}approvals\n`);
        else process.stdout.write(`${renderTable(list)}\n`);
        return 0;
      }
      const decided = await backend.decide(
        await fullId(backend, id),
        action === "approve" ? "approved" : "denied",
        values.reason,
      );
      if (values.json) process.stdout.write(`${JSON.stringify(decided, null, 2)}\n`);
      else
        process.stdout.write(
          `${decided.status} ${decided.id} (${decided.tool}${decided.agent ? ` for ${decided.agent}` : ""}) by ${decided.decidedBy}\n`,
        );
      return 0;
    } finally {
      await backend.close();
    }
  },
};

/** The approval an id names: itself, or the one approval whose id starts with it. */
async function fullId(backend: ApprovalsBackend, id: string): Promise<string> {
  const all = await backend.list("all");
  if (all.some((approval) => approval.id === id)) return id;
  const matches = all.filter((approval) => approval.id.startsWith(id));
  if (matches.length === 1) return matches[0].id;
  if (!matches.length) throw new CliError(`no approval \`${id}\` (nor one whose id starts with it)`, 1);
  const pending = matches.filter((approval) => approval.status === "pending");
  if (pending.length === 1) return pending[0].id;
  throw new CliError(
    `\`${id}\` is the start of ${matches.length} approval ids: ${matches
      .slice(0, 10)
      .map((approval) => `${approval.id} (${approval.status})`)
      .join(", ")}; give more of it`,
    1,
  );
}

function renderTable(list: Approval[]): string {
  const rows = list
    .sort((a, b) => a.createdAt - b.createdAt)
    .map((a) => [
      a.id,
      a.status,
      a.tool,
      a.agent ?? "-",
      a.session ?? "-",
      a.rule ?? "default",
      new Date(a.expiresAt).toISOString().slice(0, 19).replace("T", " "),
      a.argsSummary.length > 60 ? `${a.argsSummary.slice(0, 59)}…` : a.argsSummary,
    ]);
  return table(["ID", "STATUS", "TOOL", "AGENT", "SESSION", "RULE", "EXPIRES (UTC)", "ARGS"], rows);
}

async function openBackend(
  values: {
    store?: string;
    server?: string;
    "key-file"?: string;
    by?: string;
    audit?: string;
    "audit-key-file"?: string;
  },
  deciding: boolean,
): Promise<ApprovalsBackend> {
  const env = process.env;
  const server = values.server ?? (values.store ? undefined : env.TOOLWARDEN_SERVER);
  const store = values.store ?? (server ? undefined : env.TOOLWARDEN_STORE);
  if (server && store) throw new CliError("give either --store or --server, not both");
  if (server) return serverBackend(server, apiKey(values["key-file"]));
  if (store) {
    if (deciding && !values.audit)
      throw new CliError(
        `an approval decided against a store is audited: pass --audit LOG, the audit log of the gateway or server that asked (while it runs, it records the decision itself), or decide through --server URL\nusage: ${USAGE}`,
      );
    return storeBackend(store, values.by ?? userInfo().username, values.audit, values["audit-key-file"]);
  }
  throw new CliError(
    `no approvals source: pass --store URL (sqlite:..., redis://...) or --server URL\nusage: ${USAGE}`,
  );
}

function apiKey(file: string | undefined): string {
  const path = file ?? process.env.TOOLWARDEN_API_KEY_FILE;
  if (path) {
    try {
      return readFileSync(path, "utf8").trim();
    } catch (error) {
      throw new CliError(`cannot read the api key file \`${path}\`: ${(error as Error).message}`);
    }
  }
  const key = process.env.TOOLWARDEN_API_KEY;
  if (!key) throw new CliError("no api key: pass --key-file FILE or set TOOLWARDEN_API_KEY");
  return key;
}

/** The server decides, audits and names the approver from the key. */
function serverBackend(base: string, key: string): ApprovalsBackend {
  const root = base.replace(/\/+$/, "");
  const request = async (path: string, init: RequestInit = {}) => {
    let response: Response;
    try {
      response = await fetch(`${root}${path}`, {
        ...init,
        headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
      });
    } catch (error) {
      throw new CliError(
        `cannot reach \`${root}\`: ${(error as Error).cause ?? (error as Error).message}`,
        1,
      );
    }
    const body = (await response.json().catch(() => undefined)) as
      | { error?: { message?: string } }
      | undefined;
    if (!response.ok) throw new CliError(`server: ${body?.error?.message ?? `HTTP ${response.status}`}`, 1);
    return body;
  };
  return {
    async list(status) {
      return (
        (await request(`/v1/approvals?status=${encodeURIComponent(status)}`)) as { approvals: Approval[] }
      ).approvals;
    },
    async decide(id, status, reason) {
      const action = status === "approved" ? "approve" : "deny";
      return (await request(`/v1/approvals/${encodeURIComponent(id)}/${action}`, {
        method: "POST",
        body: JSON.stringify(reason ? { reason } : {}),
      })) as Approval;
    },
    async close() {},
  };
}

/** Straight to the store (the one the gateways share); the approval is audited when `--audit` names a log. */
async function storeBackend(
  url: string,
  by: string,
  auditLog?: string,
  auditKeyFile?: string,
): Promise<ApprovalsBackend> {
  const { createStateStore } = await import("../stores/index.js");
  const store = await createStateStore(url);
  let audit: import("../audit/types.js").AuditSink | undefined;
  /** The process holding the log's lock: it audits the decisions made on the approvals it asked for. */
  let holder: string | undefined;
  if (auditLog) {
    const { JsonlAuditSink } = await import("../audit/jsonl-sink.js");
    try {
      audit = await JsonlAuditSink.open({ path: auditLog, keyFile: auditKeyFile });
    } catch (error) {
      const locked = /is locked by `([^`]*)`/.exec((error as Error).message);
      if (!locked) {
        await store.close();
        throw error;
      }
      holder = locked[1];
    }
  }
  return {
    async list(status) {
      await store.expireApprovals(Date.now());
      return store.listApprovals(status === "all" ? {} : { status: status as ApprovalStatus });
    },
    async decide(id, status, reason) {
      const decided = await store.decideApproval(id, status, by, reason, Date.now());
      if (!decided) {
        const existing = await store.getApproval(id);
        throw new CliError(
          existing ? `approval \`${id}\` is ${existing.status}, not pending` : `no approval \`${id}\``,
          1,
        );
      }
      await audit?.append({
        time: new Date().toISOString(),
        ...approvalEvent(decided, status, by, reason, { via: "cli" }),
      });
      if (holder)
        process.stderr.write(
          `the audit log \`${auditLog}\` is held by ${holder}: that process records this decision (approver and reason) in it\n`,
        );
      return decided;
    },
    async close() {
      await audit?.close();
      await store.close();
    },
  };
}
