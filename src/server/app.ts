import type { Context, MiddlewareHandler } from "hono";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { PolicyLoadError, ToolwardenError } from "../core/index.js";
import type { ErrorStatus } from "./http-errors.js";
import { bodyTooLarge, HttpError, statusOf } from "./http-errors.js";
import type { ApiKeyIdentity, ApiKeyStore, Role } from "./keys.js";
import { openApiDocument, type RouteDoc } from "./openapi.js";
import { approvalRoutes } from "./routes/approvals.js";
import { auditRoutes } from "./routes/audit.js";
import {
  CALLERS,
  type Env,
  type Handler,
  type Route,
  type RouteGroup,
  type RouteSpec,
  type ServerContext,
} from "./routes/context.js";
import { decisionRoutes } from "./routes/decisions.js";
import { keyRoutes } from "./routes/keys.js";
import { metaRoutes } from "./routes/meta.js";
import { policyRoutes } from "./routes/policy.js";
import { securityHeaders } from "./secure-headers.js";

export type { ServerContext } from "./routes/context.js";

/** The route groups by OpenAPI tag, in the order the document lists them. */
const GROUPS: Array<[tag: string, group: RouteGroup]> = [
  ["server", metaRoutes],
  ["decisions", decisionRoutes],
  ["approvals", approvalRoutes],
  ["audit", auditRoutes],
  ["policy", policyRoutes],
  ["keys", keyRoutes],
];

/** Builds the HTTP app: the versioned JSON API, the event stream, metrics, OpenAPI and the dashboard. */
export function createApp(ctx: ServerContext): { app: Hono<Env>; routes: RouteDoc[] } {
  const app = new Hono<Env>();
  const routes: RouteDoc[] = [];

  app.use("*", securityHeaders());
  if (ctx.corsOrigins?.length) {
    app.use(
      "/v1/*",
      cors({
        origin: ctx.corsOrigins,
        allowHeaders: ["Authorization", "Content-Type"],
        allowMethods: ["GET", "POST", "DELETE"],
      }),
    );
  }
  const tooLarge = (c: Context) => {
    const refused = bodyTooLarge(ctx.maxBodyBytes);
    return fail(c, refused.status, refused.code, refused.message);
  };
  const streamedLimit = bodyLimit({ maxSize: ctx.maxBodyBytes, onError: tooLarge });
  app.use("/v1/*", (c, next) => {
    const method = c.req.method;
    if (method === "GET" || method === "HEAD") return next();
    // A declared length is checked from the header alone: reading `body` here (as bodyLimit does)
    // makes the Node adapter build a web Request and stream for every call, which the handler's
    // own read of the body does without. A body without a length is counted as it streams.
    const length = c.req.header("content-length");
    if (length !== undefined && c.req.header("transfer-encoding") === undefined)
      return Number.parseInt(length, 10) > ctx.maxBodyBytes ? Promise.resolve(tooLarge(c)) : next();
    return streamedLimit(c, next);
  });

  for (const [tag, group] of GROUPS) {
    const callers = Object.entries(CALLERS) as Array<[keyof typeof CALLERS, RouteDoc["roles"]]>;
    const route = Object.fromEntries(
      callers.map(([who, roles]) => [
        who,
        ({ at, ...spec }: RouteSpec, handler: Handler) => {
          const [method, path] = at.split(" ") as [Uppercase<RouteDoc["method"]>, string];
          routes.push({ method: method.toLowerCase() as RouteDoc["method"], path, tag, roles, ...spec });
          const guards: MiddlewareHandler<Env>[] = roles === "public" ? [] : [authenticate(ctx.keys, roles)];
          app.on(method, [path], ...guards, handler);
        },
      ]),
    ) as Route;
    group(route, ctx);
  }

  const document = openApiDocument(routes, ctx.version);
  app.get("/openapi.json", (c) => c.json(document));

  for (const [path, asset] of Object.entries(ctx.dashboard)) {
    app.get(path, (c) =>
      c.body(asset.body, 200, { "Content-Type": asset.type, "Cache-Control": "no-cache" }),
    );
  }

  app.notFound((c) => fail(c, 404, "not_found", `no route ${c.req.method} ${new URL(c.req.url).pathname}`));
  app.onError((error, c) => {
    const reply = errorReply(error, ctx.log, `${c.req.method} ${new URL(c.req.url).pathname}`);
    return c.json(reply.body, reply.status);
  });
  return { app, routes };
}

/** Checks the bearer key and its role; sets `identity`. */
function authenticate(keys: ApiKeyStore, roles: readonly Role[]): MiddlewareHandler<Env> {
  return async (c, next) => {
    const identity = await identify(keys, c.req.header("Authorization"), roles);
    if (identity instanceof KeyRefused) {
      if (identity.challenge) c.header("WWW-Authenticate", identity.challenge);
      return fail(c, identity.status, identity.code, identity.message);
    }
    c.set("identity", identity);
    await next();
  };
}

/** A refused key: 401 with its `WWW-Authenticate` challenge, or 403 for a role that may not. */
export class KeyRefused extends HttpError {
  constructor(
    status: 401 | 403,
    message: string,
    readonly challenge?: string,
  ) {
    super(status, status === 401 ? "unauthorized" : "forbidden", message);
  }
}

/** The identity of the bearer key in `authorization` if it has one of `roles`; else why not. */
export async function identify(
  keys: ApiKeyStore,
  authorization: string | undefined,
  roles: readonly Role[],
): Promise<ApiKeyIdentity | KeyRefused> {
  const match = authorization ? /^Bearer\s+(\S+)\s*$/i.exec(authorization) : null;
  if (!match) {
    return new KeyRefused(
      401,
      "missing api key: send `Authorization: Bearer <key>`",
      'Bearer realm="toolwarden"',
    );
  }
  const identity = await keys.verifyFresh(match[1]);
  if (!identity)
    return new KeyRefused(401, "invalid api key", 'Bearer realm="toolwarden", error="invalid_token"');
  if (!roles.includes(identity.role)) {
    return new KeyRefused(
      403,
      `this needs the role ${roles.join(" or ")}; the key has the role ${identity.role}`,
    );
  }
  return identity;
}

/**
 * The one place a thrown error becomes a response (`at` is the method and path, for the log): its
 * status from STATUS_BY_CODE, and the body `{error: {code, message, issues?}}` (or a policy's errors).
 */
export function errorReply(
  error: Error,
  log: (line: string) => void,
  at: string,
): { status: ErrorStatus; body: unknown } {
  if (error instanceof PolicyLoadError) return { status: statusOf(error), body: policyInvalid(error) };
  const status = statusOf(error);
  if (status !== 500 && (error instanceof HttpError || error instanceof ToolwardenError)) {
    return {
      status,
      body: errorBody(error.code, error.message, error instanceof HttpError ? error.issues : undefined),
    };
  }
  log(`internal error on ${at}: ${error.message}`);
  return { status: 500, body: errorBody("internal", "internal error") };
}

/** An error response: `{error: {code, message, issues?}}`. */
function fail(
  c: Context,
  status: ErrorStatus,
  code: string,
  message: string,
  issues?: Array<{ path: string; message: string }>,
): Response {
  return c.json(errorBody(code, message, issues), status);
}

function errorBody(code: string, message: string, issues?: Array<{ path: string; message: string }>) {
  return { error: { code, message, ...(issues ? { issues } : {}) } };
}

/** An invalid policy: `{valid: false, error, errors}` (422), each error naming file, line and column. */
function policyInvalid(error: PolicyLoadError) {
  const errors = error.issues.map(({ file, line, col, message, help }) => ({
    file,
    line,
    col,
    message,
    ...(help ? { help } : {}),
  }));
  return {
    valid: false,
    error: {
      code: error.code,
      message: error.issues.map((i) => `${i.file}:${i.line}:${i.col}: ${i.message}`).join("\n"),
    },
    errors,
  };
}
