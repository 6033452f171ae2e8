import { dryRun } from "../dry-run.js";
import { HttpError } from "../http-errors.js";
import { DryRunRequestSchema, PolicySourceSchema } from "../schemas.js";
import type { RouteGroup } from "./context.js";
import { param, parseBody } from "./request.js";

/**
 * The active policy and its stored versions: validate, upload, dry-run, activate, roll back. An
 * invalid policy is thrown as `PolicyLoadError`; the app's `onError` answers 422 with its issues.
 */
export const policyRoutes: RouteGroup = (route, ctx) => {
  route.approver(
    {
      at: "GET /v1/policy",
      summary: "The active policy: name, hash and the text of every file it is made of.",
      response: { status: 200, description: "The active policy." },
    },
    (c) => {
      const policy = ctx.policies.active;
      return c.json({
        name: policy.name,
        hash: policy.hash,
        file: ctx.policies.file,
        default: policy.defaultVerdict,
        fail: policy.failOpen ? "open" : "closed",
        tools: policy.tools.size,
        limits: policy.limits.length,
        sources: policy.loaded.sources.map((source) => ({ file: source.file, text: source.text })),
      });
    },
  );

  route.approver(
    {
      at: "GET /v1/policy/versions",
      summary: "Every stored policy version, newest first.",
      response: { status: 200, description: "`{versions: [...]}`." },
    },
    (c) => c.json({ versions: ctx.policies.list() }),
  );

  route.approver(
    {
      at: "GET /v1/policy/versions/:hash",
      summary: "One version and its text.",
      response: { status: 200, description: "`{version, source}`." },
    },
    (c) => c.json(stored(param(c, "hash"))),
  );

  route.admin(
    {
      at: "POST /v1/policy/validate",
      summary: "Validate policy text; errors name line and column.",
      body: PolicySourceSchema,
      response: { status: 200, description: "`{valid: true, name, hash}`; 422 `{valid: false, errors}`." },
    },
    async (c) => {
      const { source } = await parseBody(c, PolicySourceSchema);
      const policy = await ctx.policies.validateUpload(source);
      return c.json({ valid: true, name: policy.name, hash: policy.hash });
    },
  );

  route.admin(
    {
      at: "POST /v1/policy/versions",
      summary: "Upload a policy version (validated first; `activate: true` to switch to it).",
      body: PolicySourceSchema,
      response: {
        status: 201,
        description: "`{version, change?}`; 422 with the errors when invalid (nothing is stored).",
      },
    },
    async (c) => {
      const { source, activate } = await parseBody(c, PolicySourceSchema);
      return c.json(await ctx.policies.upload(source, c.get("identity").name, activate ?? false), 201);
    },
  );

  route.admin(
    {
      at: "POST /v1/policy/dry-run",
      summary: "Which recent decisions a policy (text or stored version) would change.",
      body: DryRunRequestSchema,
      response: { status: 200, description: "Calls compared and the decisions that would change." },
    },
    async (c) => {
      const body = await parseBody(c, DryRunRequestSchema);
      const candidate = await ctx.policies.compileUploadAsync(
        body.source ?? stored(body.hash as string).source,
      );
      return c.json(await dryRun(ctx.policies.active, candidate, ctx.recent, ctx.reader, body.limit ?? 500));
    },
  );

  route.admin(
    {
      at: "POST /v1/policy/versions/:hash/activate",
      summary: "Activate a stored version (audited with both hashes).",
      response: { status: 200, description: "`{action, from, to, by}`." },
    },
    async (c) => c.json(await ctx.policies.activate(param(c, "hash"), c.get("identity").name)),
  );

  route.admin(
    {
      at: "POST /v1/policy/rollback",
      summary: "Return to the version that was active before the current one.",
      response: {
        status: 200,
        description: "`{action, from, to, by}`; 409 when there is nothing to roll back to.",
      },
    },
    async (c) => c.json(await ctx.policies.rollback(c.get("identity").name)),
  );

  /** A stored version with its text; a 404 when there is none. */
  function stored(hash: string) {
    const found = ctx.policies.get(hash);
    if (!found) throw new HttpError(404, "not_found", `no policy version \`${hash}\``);
    return found;
  }
};
