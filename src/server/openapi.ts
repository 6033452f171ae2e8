import { z } from "zod";
import type { Role } from "./keys.js";
import { components } from "./schemas.js";

/** One API route as documented: the same table registers the route and writes the OpenAPI entry. */
export interface RouteDoc {
  method: "get" | "post" | "delete";
  /** Hono path syntax (`/v1/approvals/:id`). */
  path: string;
  summary: string;
  tag: string;
  /** Who may call it; `public`: no key needed. */
  roles: readonly Role[] | "public";
  body?: z.ZodType;
  /** Query parameters, documented from an object schema. */
  query?: z.ZodObject;
  response: { status: number; description: string; schema?: z.ZodType; contentType?: string };
}

/** The OpenAPI 3.1 document for a route table; component schemas come from the zod registry. */
export function openApiDocument(routes: readonly RouteDoc[], version: string): Record<string, unknown> {
  const generated = z.toJSONSchema(components, {
    target: "draft-2020-12",
    io: "input",
    unrepresentable: "any",
    uri: (id) => `#/components/schemas/${id}`,
  }) as { schemas: Record<string, Record<string, unknown>> };
  const schemas = Object.fromEntries(
    Object.entries(generated.schemas).map(([id, { $schema: _s, $id: _i, ...schema }]) => [id, schema]),
  );
  const ref = (schema: z.ZodType) => {
    const meta = components.get(schema);
    return meta ? { $ref: `#/components/schemas/${meta.id}` } : inline(schema);
  };
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const path = route.path.replace(/:([A-Za-z]+)/g, "{$1}");
    const parameters = [
      ...[...route.path.matchAll(/:([A-Za-z]+)/g)].map((m) => ({
        name: m[1],
        in: "path",
        required: true,
        schema: { type: "string" },
      })),
      ...Object.entries(route.query?.shape ?? {}).map(([name, schema]) => ({
        name,
        in: "query",
        required: false,
        schema: inline(schema as z.ZodType),
      })),
    ];
    const errors: Record<string, unknown> = {};
    const errorResponse = (description: string) => ({
      description,
      content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
    });
    if (route.body || route.query)
      errors["400"] = errorResponse(
        "Malformed JSON or a body that does not match the schema; nothing is stored.",
      );
    if (route.roles !== "public") {
      errors["401"] = errorResponse("Missing or unknown API key.");
      errors["403"] = errorResponse(`The key's role may not do this (needs ${route.roles.join(" or ")}).`);
    }
    if (route.body) errors["413"] = errorResponse("The body is larger than the server's limit.");
    paths[path] ??= {};
    paths[path][route.method] = {
      summary: route.summary,
      tags: [route.tag],
      ...(route.roles === "public" ? { security: [] } : { "x-roles": route.roles }),
      ...(parameters.length ? { parameters } : {}),
      ...(route.body
        ? { requestBody: { required: true, content: { "application/json": { schema: ref(route.body) } } } }
        : {}),
      responses: {
        [String(route.response.status)]: {
          description: route.response.description,
          ...(route.response.schema || route.response.contentType
            ? {
                content: {
                  [route.response.contentType ?? "application/json"]: {
                    schema: route.response.schema ? ref(route.response.schema) : { type: "string" },
                  },
                },
              }
            : {}),
        },
        ...errors,
      },
    };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "toolwarden",
      version,
      description:
        "Decisions, approvals, audit and policy management of a toolwarden server. Authenticate with `Authorization: Bearer <api key>`; keys have the role `agent` (decides for its own agent id only), `approver` or `admin`.",
    },
    servers: [{ url: "/" }],
    security: [{ apiKey: [] }],
    components: {
      securitySchemes: {
        apiKey: { type: "http", scheme: "bearer", description: "An API key `twk_<id>_<secret>`." },
      },
      schemas,
    },
    paths,
  };
}

function inline(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _s, ...rest } = z.toJSONSchema(schema, {
    target: "draft-2020-12",
    io: "input",
    unrepresentable: "any",
  }) as Record<string, unknown>;
  return rest;
}
