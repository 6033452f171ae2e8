import {
  createServer,
  type ServerOptions as HttpServerOptions,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { FanoutAuditSink } from "../audit/fanout.js";
import { JsonlAuditSink } from "../audit/jsonl-sink.js";
import type { AuditSink } from "../audit/types.js";
import { importOptional } from "../core/optional.js";
import { toolwardenVersion } from "../core/version.js";
import { Warden } from "../gateway/index.js";
import type { SessionBounds } from "../gateway/sessions.js";
import { compilePolicyFile } from "../policy/index.js";
import {
  createStateStore,
  DEFAULT_STORE_TIMEOUT_MS,
  isGuarded,
  withStoreDeadlines,
} from "../stores/index.js";
import { createApp, type ServerContext } from "./app.js";
import { ThreadedSqliteCopy } from "./audit-copy.js";
import { type AuditReader, PostgresAuditReader, SqliteAuditReader } from "./audit-reader.js";
import { loadDashboard } from "./dashboard.js";
import { bootstrapDataDir, type DataDir } from "./data-dir.js";
import { decideOnNode } from "./decide-on-node.js";
import { RecentCalls } from "./dry-run.js";
import { EventBus, TapAuditSink } from "./events.js";
import { type PolicyWatcher, watchPolicy } from "./hot-reload.js";
import type { ApiKeyStore } from "./keys.js";
import { ServerMetrics } from "./metrics.js";
import { PolicyManager } from "./policy-versions.js";

export interface ServerOptions {
  /** The policy file; watched and reloaded on change unless `watch: false`. */
  policy: string;
  /** Keys, SQLite state and audit, policy versions. Default `.toolwarden`. */
  dataDir?: string;
  /** State store URL (`sqlite:...`, `redis://...`, `memory:`). Default: SQLite in the data directory. */
  store?: string;
  /** Deadline of one state store operation (ms); past it the call is denied. Default 250. */
  storeTimeoutMs?: number;
  /** Session bounds in the store: idle expiry, caps per store and per agent (see `WardenOptions.sessions`). */
  sessions?: SessionBounds;
  /** PostgreSQL connection string: audit there (queried by the API) instead of SQLite. */
  auditPg?: string;
  auditPgSchema?: string;
  /**
   * When a decision's audit record counts as written: `fsync` (default) after the JSONL log is
   * fdatasync'ed, `write` once it is handed to the OS (survives a process crash, not a power loss).
   */
  auditDurability?: "fsync" | "write";
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Largest request body; default 1 MiB. */
  maxBodyBytes?: number;
  /** Origins allowed to call the API from a browser; none by default. */
  corsOrigins?: string[];
  /** Watch the policy files; default true. */
  watch?: boolean;
  /** Observe every decision whatever the policy's `mode`: audited with `enforced: false`, nothing refused. */
  observe?: boolean;
  /** How long a pending approval stays valid (ms); default 15 minutes. */
  approvalTtlMs?: number;
  /** The clock of decisions and approvals (`WardenOptions.now`); default `Date.now`. */
  now?: () => number;
  /** Where operational lines go; default stderr. Never receives secrets. */
  log?: (line: string) => void;
  env?: Record<string, string | undefined>;
}

/** How often a replica looks for a policy version activated on another (ms). */
const POLICY_SYNC_MS = 1000;

/** A running server. */
export interface ToolwardenServer {
  url: string;
  port: number;
  warden: Warden;
  keys: ApiKeyStore;
  policies: PolicyManager;
  reader: AuditReader;
  audit: FanoutAuditSink;
  paths: DataDir;
  /** Set on first start: the file holding the new admin key. */
  createdAdminKey?: string;
  createdAuditKeyFile?: string;
  close(): Promise<void>;
}

/**
 * Starts `toolwarden serve`: opens the data directory (creating keys on first start), the state
 * store and the audit sinks (JSONL + SQLite, or JSONL + PostgreSQL, behind a spooling fanout),
 * loads and watches the policy, and listens. Throws `PolicyLoadError` for an invalid policy.
 */
export async function startServer(options: ServerOptions): Promise<ToolwardenServer> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const compiled = compilePolicyFile(options.policy);
  await compiled.ready?.();
  const boot = bootstrapDataDir(options.dataDir ?? ".toolwarden", options.env);
  const { paths } = boot;
  const cleanup: Array<() => Promise<unknown>> = [];
  const undo = async () => {
    for (const step of cleanup.reverse()) await step().catch(() => {});
  };
  try {
    const store = withStoreDeadlines(
      await createStateStore(options.store ?? `sqlite:${paths.stateDb}`, {
        lockWaitMs: options.storeTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS,
      }),
      {
        timeoutMs: options.storeTimeoutMs,
        onChange: (health) =>
          log(
            health.ok
              ? `state store \`${health.kind}\` answers again`
              : `state store \`${health.kind}\` is down: ${health.error ?? "no answer"}`,
          ),
      },
    );
    cleanup.push(() => store.close());
    // API keys are shared through the store (replicas authenticate the same keys); the memory
    // store shares nothing, and a store down at start leaves this replica on its own keys file.
    if (store.kind !== "memory") {
      await boot.keys
        .share(store)
        .catch((error: Error) => log(`api keys are not shared through the state store: ${error.message}`));
    }
    const sinks: Array<{ name: string; sink: AuditSink; copy?: boolean }> = [
      {
        name: "jsonl",
        sink: await JsonlAuditSink.open({
          path: paths.auditLog,
          key: boot.auditKey,
          durability: options.auditDurability ?? "fsync",
        }),
      },
    ];
    cleanup.push(() => sinks[0].sink.close());
    if (options.auditPg) {
      const { PostgresAuditSink } = await importOptional(
        "pg",
        "the PostgreSQL audit sink",
        () => import("../audit/postgres-sink.js"),
      );
      const sink = await PostgresAuditSink.open({
        connection: options.auditPg,
        key: boot.auditKey,
        schema: options.auditPgSchema,
      });
      sinks.push({ name: "postgres", sink });
    } else {
      const { SqliteAuditSink } = await import("../audit/sqlite-sink.js");
      // The JSONL log is fsynced per batch and is the record of truth; the SQLite copy is the query
      // index, so it commits without its own fsync (WAL, synchronous=NORMAL: it survives a process
      // crash, and after a power loss `audit verify` on the JSONL log still holds every record).
      const sqlite = new SqliteAuditSink({ path: paths.auditDb, key: boot.auditKey, durability: "write" });
      // A copy: a decision is answered once its JSONL record is kept, without waiting for SQLite.
      sinks.push({ name: "sqlite", sink: sqlite, copy: true });
      // After a crash the copy may lack the log's last records or hold unacknowledged ones.
      const { levelSqliteWithJsonl } = await import("../audit/reconcile.js");
      await (sinks[0].sink as JsonlAuditSink).flush();
      const level = await levelSqliteWithJsonl({ jsonl: paths.auditLog, sqlite, spoolDir: paths.spoolDir });
      if (level.skipped)
        log(`audit: the SQLite copy was not levelled with ${paths.auditLog}: ${level.skipped}`);
      else if (level.removed || level.copied)
        log(
          `audit: the SQLite copy was levelled with ${paths.auditLog} (the record of truth): ${level.removed} records it alone held removed, ${level.copied} copied${level.rebuilt ? " (rebuilt from the whole log)" : ""}`,
        );
      // From here on the copy is written by a thread of its own, off the thread that answers requests.
      const threaded = await ThreadedSqliteCopy.open({
        path: paths.auditDb,
        key: boot.auditKey,
        durability: "write",
      });
      if (threaded) {
        await sqlite.close();
        sinks[1].sink = threaded;
      }
    }
    cleanup.push(() => sinks[1].sink.close());
    const fanout = await FanoutAuditSink.open({ sinks, spoolDir: paths.spoolDir, key: boot.auditKey });
    cleanup.splice(1, 2, () => fanout.close());
    const bus = new EventBus();
    const warden = new Warden(compiled, {
      store,
      audit: new TapAuditSink(fanout, bus),
      approvals: { ttl: options.approvalTtlMs },
      sessions: options.sessions,
      observe: options.observe,
      now: options.now,
    });
    const reader = readsAfterCopies(
      options.auditPg
        ? await PostgresAuditReader.open(options.auditPg, { schema: options.auditPgSchema })
        : await SqliteAuditReader.open(paths.auditDb),
      fanout,
    );
    cleanup.push(() => reader.close());
    const metrics = new ServerMetrics({
      policy: () => warden.policy,
      pendingApprovals: async () => (await store.listApprovals({ status: "pending" })).length,
      auditQueued: () => fanout.queueDepth,
      eventClients: () => ({ connected: bus.size, dropped: bus.dropped }),
    });
    const policies = new PolicyManager({
      warden,
      file: options.policy,
      dir: paths.policiesDir,
      bus,
      onChange: (result) => metrics.policyChange(result),
      log,
    });
    // Policy versions are shared through the store like the keys: every replica runs the version
    // active there and follows a change made on another within POLICY_SYNC_MS.
    if (store.kind !== "memory") {
      await policies
        .share(store)
        .catch((error: Error) =>
          log(`policy versions are not shared through the state store: ${error.message}`),
        );
    }
    await policies.start();
    const sync = setInterval(() => void policies.refresh(), POLICY_SYNC_MS);
    sync.unref();
    cleanup.push(async () => clearInterval(sync));

    const context: ServerContext = {
      warden,
      keys: boot.keys,
      policies,
      reader,
      bus,
      metrics,
      recent: new RecentCalls(),
      dashboard: loadDashboard(),
      maxBodyBytes: options.maxBodyBytes ?? 1024 * 1024,
      corsOrigins: options.corsOrigins,
      health: async () => {
        const state = isGuarded(store) ? await store.check() : { ok: true };
        return {
          ok: !fanout.overBound && state.ok,
          checks: { audit: fanout.overBound ? "backlog" : "ok", store: state.ok ? "ok" : "down" },
          detail: { audit: fanout.status(), store: state },
        };
      },
      log,
      version: toolwardenVersion(),
    };
    const { app } = createApp(context);

    const watcher: PolicyWatcher | undefined =
      options.watch === false ? undefined : watchPolicy(policies, { log });
    const expiry = setInterval(() => void expireApprovals(warden, bus, log), 5000);
    expiry.unref();
    cleanup.push(async () => {
      clearInterval(expiry);
      watcher?.close();
    });

    const server = await listen(
      app.fetch,
      decideOnNode(context),
      options.port ?? 8080,
      options.host ?? "127.0.0.1",
    );
    const address = server.address() as AddressInfo;
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
    let closing: Promise<void> | undefined;
    return {
      url: `http://${host}:${address.port}`,
      port: address.port,
      warden,
      keys: boot.keys,
      policies,
      reader,
      audit: fanout,
      paths,
      createdAdminKey: boot.createdAdminKey,
      createdAuditKeyFile: boot.createdAuditKeyFile,
      close() {
        closing ??= (async () => {
          watcher?.close();
          clearInterval(expiry);
          clearInterval(sync);
          await new Promise<void>((resolve) => {
            server.close(() => resolve());
            // Event streams never end on their own.
            server.closeAllConnections();
          });
          await reader.close().catch(() => {});
          await warden.close();
        })();
        return closing;
      },
    };
  } catch (error) {
    await undo();
    throw error;
  }
}

/** Listens with Hono's Node adapter; `first` may answer a request before Hono does (true when it did). */
function listen(
  fetch: (request: Request, env: never) => Response | Promise<Response>,
  first: (req: IncomingMessage, res: ServerResponse) => boolean,
  port: number,
  hostname: string,
): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = serve({
      fetch: fetch as never,
      port,
      hostname,
      createServer: ((options: HttpServerOptions, hono: RequestListener) =>
        createServer(options, (req, res) => {
          if (!first(req, res)) void hono(req, res);
        })) as never,
    }) as Server;
    server.once("listening", () => resolve(server));
    server.once("error", (error: NodeJS.ErrnoException) => {
      reject(
        error.code === "EADDRINUSE"
          ? new Error(
              `port ${port} on ${hostname} is in use; pick another with --port N or TOOLWARDEN_PORT=N (with npm start: \`npm start -- --port N\`; 0: any free port)`,
            )
          : error,
      );
    });
  });
}

/** Marks expired approvals, audits each once and tells the dashboards and waiting calls. */
async function expireApprovals(warden: Warden, bus: EventBus, log: (line: string) => void): Promise<void> {
  try {
    for (const approval of await warden.store.expireApprovals(warden.approvals.now())) {
      bus.emit({ type: "approval", approval });
      await warden.appendAudit({
        kind: "approval",
        tool: approval.tool,
        agent: approval.agent,
        session: approval.session,
        approval: { id: approval.id, status: "expired" },
      });
    }
  } catch (error) {
    log(`cannot expire approvals: ${(error as Error).message}`);
  }
}

/**
 * The audit reader over a copy the fanout does not wait for (SQLite): each read first waits for
 * the records appended so far, so a decision answered before a query is in its results.
 */
function readsAfterCopies(reader: AuditReader, fanout: FanoutAuditSink): AuditReader {
  const settled = () => fanout.flushCopies().catch(() => {});
  return {
    query: async (filter) => {
      await settled();
      return reader.query(filter);
    },
    stats: async (since, bucket) => {
      await settled();
      return reader.stats(since, bucket);
    },
    count: async () => {
      await settled();
      return reader.count();
    },
    close: () => reader.close(),
  };
}
