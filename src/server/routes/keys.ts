import { HttpError } from "../http-errors.js";
import { CreateKeySchema } from "../schemas.js";
import type { RouteGroup } from "./context.js";
import { param, parseBody } from "./request.js";

/** API keys: list, create, revoke (admin only). */
export const keyRoutes: RouteGroup = (route, ctx) => {
  route.admin(
    {
      at: "GET /v1/keys",
      summary: "The API keys (ids, names, roles; never the keys).",
      response: { status: 200, description: "`{keys: [...]}`." },
    },
    (c) => c.json({ keys: ctx.keys.list() }),
  );

  route.admin(
    {
      at: "POST /v1/keys",
      summary: "Create an API key; the key is in this response only.",
      body: CreateKeySchema,
      response: { status: 201, description: "`{key, identity}`." },
    },
    async (c) => c.json(await ctx.keys.createKey(await parseBody(c, CreateKeySchema)), 201),
  );

  route.admin(
    {
      at: "DELETE /v1/keys/:id",
      summary: "Revoke an API key.",
      response: { status: 204, description: "Revoked." },
    },
    async (c) => {
      const id = param(c, "id");
      if (!(await ctx.keys.revokeKey(id))) throw new HttpError(404, "not_found", `no key \`${id}\``);
      return c.body(null, 204);
    },
  );
};
