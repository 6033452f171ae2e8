import { isDeepStrictEqual } from "node:util";
import type { Context } from "hono";
import type { z } from "zod";
import type { Call } from "../../core/index.js";
import type { Session } from "../../gateway/index.js";
import { HttpError } from "../http-errors.js";
import type { ApiKeyIdentity } from "../keys.js";
import type { Env, ServerContext } from "./context.js";

/** A path parameter; the route's pattern guarantees it is there. */
export function param(c: Context, name: string): string {
  return c.req.param(name) ?? "";
}

/** The body as JSON checked against `schema`; throws a 400 when it is not JSON or does not match. */
export async function parseBody<S extends z.ZodType>(
  c: Context,
  schema: S,
  emptyIsObject = false,
): Promise<z.infer<S>> {
  return parseJson(await c.req.text(), schema, emptyIsObject);
}

/** `text` as JSON checked against `schema`, whatever carried it; throws a 400 as `parseBody` does. */
export function parseJson<S extends z.ZodType>(text: string, schema: S, emptyIsObject = false): z.infer<S> {
  let value: unknown;
  if (emptyIsObject && text.trim() === "") value = {};
  else {
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new HttpError(400, "invalid_json", `the body is not JSON: ${(error as Error).message}`);
    }
  }
  return checked(schema, value, "invalid_body", "the body");
}

/** The query string checked against `schema`; throws a 400 when it does not match. */
export function parseQuery<S extends z.ZodType>(c: Context, schema: S): z.infer<S> {
  return checked(schema, c.req.query(), "invalid_query", "the query");
}

function checked<S extends z.ZodType>(schema: S, value: unknown, code: string, what: string): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((issue) => ({
    path: issue.path.map(String).join(".") || "(root)",
    message: issue.message,
  }));
  const first = issues[0];
  throw new HttpError(400, code, `${what} does not match the schema: \`${first.path}\`: ${first.message}`, {
    issues,
  });
}

/** The call's session could not be opened (the store failed or refused it); `cause` is the store's error. */
export class SessionUnavailable extends HttpError {
  constructor(cause: unknown) {
    super(503, "store_unavailable", cause instanceof Error ? cause.message : String(cause), { cause });
  }
}

/**
 * An `agent` key decides only for its own agent id, with the attributes bound to the key, and only
 * in sessions of that agent. Other roles act for anyone. Opens the call's session (left on the
 * request as `session`); throws a 403 `HttpError`, or `SessionUnavailable`.
 */
export async function bindCall<C extends Pick<Call, "tool" | "agent" | "session" | "server">>(
  c: Context<Env>,
  ctx: ServerContext,
  call: C,
): Promise<C> {
  const bound = await bindFor(c.get("identity"), ctx, call);
  if (bound.session) c.set("session", bound.session);
  return bound.call;
}

/** `bindCall` for `identity`, whatever carried the request: the bound call and its opened session. */
export async function bindFor<C extends Pick<Call, "tool" | "agent" | "session" | "server">>(
  identity: ApiKeyIdentity,
  ctx: ServerContext,
  call: C,
): Promise<{ call: C; session?: Session }> {
  let bound = call;
  if (identity.role === "agent") {
    const claimed = call.agent ?? {};
    if (claimed.id !== undefined && claimed.id !== identity.agent) {
      throw new HttpError(
        403,
        "forbidden",
        `this key decides only for agent \`${identity.agent}\`, not \`${claimed.id}\``,
      );
    }
    for (const [name, value] of Object.entries(claimed)) {
      if (name !== "id" && !isDeepStrictEqual(value, identity.attrs?.[name])) {
        throw new HttpError(403, "forbidden", `agent attribute \`${name}\` comes from the key, not the call`);
      }
    }
    bound = { ...call, agent: { ...identity.attrs, id: identity.agent } };
  }
  if (typeof bound.session !== "string") return { call: bound };
  // The owner is stored with the session (the first agent to open it) and expires with it.
  let session: Session;
  try {
    // Up to date for this request: the decision does not read it again.
    session = await ctx.warden.openSession({ id: bound.session, agent: bound.agent });
  } catch (error) {
    throw new SessionUnavailable(error);
  }
  const agent = typeof bound.agent?.id === "string" ? bound.agent.id : undefined;
  if (identity.role === "agent" && session.owner !== agent) {
    throw new HttpError(403, "forbidden", `session \`${bound.session}\` belongs to another agent`);
  }
  return { call: bound, session };
}
