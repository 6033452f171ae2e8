import type { Context } from "hono";
import type { Session, Warden } from "../../gateway/index.js";
import type { AuditReader } from "../audit-reader.js";
import type { DashboardAssets } from "../dashboard.js";
import type { RecentCalls } from "../dry-run.js";
import type { EventBus } from "../events.js";
import type { ApiKeyIdentity, ApiKeyStore } from "../keys.js";
import type { ServerMetrics } from "../metrics.js";
import type { RouteDoc } from "../openapi.js";
import type { PolicyManager } from "../policy-versions.js";

/** Everything the routes work with; `startServer` builds it. */
export interface ServerContext {
  warden: Warden;
  keys: ApiKeyStore;
  policies: PolicyManager;
  reader: AuditReader;
  bus: EventBus;
  metrics: ServerMetrics;
  recent: RecentCalls;
  dashboard: DashboardAssets;
  /** Largest request body in bytes. */
  maxBodyBytes: number;
  /** Origins allowed cross-origin requests; none by default (CORS off). */
  corsOrigins?: string[];
  /** Whether the audit trail keeps up and the state store answers; `checks` is public, `detail` is not. */
  health():
    | { ok: boolean; checks?: Record<string, string>; detail: Record<string, unknown> }
    | Promise<{ ok: boolean; checks?: Record<string, string>; detail: Record<string, unknown> }>;
  log(line: string): void;
  version: string;
}

/** What the auth middleware and `bindCall` leave on a request for its handler. */
export type Env = { Variables: { identity: ApiKeyIdentity; session?: Session } };

/** A route handler: it returns the success response and throws an `HttpError` (or a `ToolwardenError`) for anything else. */
export type Handler = (c: Context<Env>) => Response | Promise<Response>;

/**
 * Who may call a route, named by the least role that may: an admin may call every route but
 * `public` needs no key at all. A group declares a route as `route.admin({...}, handler)`.
 */
export const CALLERS = {
  public: "public",
  anyKey: ["agent", "approver", "admin"],
  agent: ["agent", "admin"],
  approver: ["approver", "admin"],
  admin: ["admin"],
} as const satisfies Record<string, RouteDoc["roles"]>;

/** A route as a group declares it: `at` is the method and path (`"POST /v1/decide"`); the app adds the group's tag. */
export type RouteSpec = Omit<RouteDoc, "method" | "path" | "tag" | "roles"> & {
  at: `${Uppercase<RouteDoc["method"]>} /${string}`;
};

/** Registers the documented routes of a group, one function for each set of callers. */
export type Route = Record<keyof typeof CALLERS, (spec: RouteSpec, handler: Handler) => void>;

/** A route group: registers its routes (one file per group under `routes/`). */
export type RouteGroup = (route: Route, ctx: ServerContext) => void;
