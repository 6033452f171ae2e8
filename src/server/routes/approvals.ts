import { approvalEvent } from "../../approvals/approvals.js";
import type { ApprovalStatus } from "../../stores/types.js";
import { HttpError } from "../http-errors.js";
import { ApprovalDecisionSchema, ApprovalSchema } from "../schemas.js";
import type { RouteGroup } from "./context.js";
import { param, parseBody } from "./request.js";

const STATUSES = ["pending", "approved", "denied", "expired", "used", "all"];

/** The approver's side of `ask`: list pending calls, approve or deny them. */
export const approvalRoutes: RouteGroup = (route, ctx) => {
  route.approver(
    {
      at: "GET /v1/approvals",
      summary: "Approvals, pending by default (`?status=approved|denied|expired|used|all`).",
      response: { status: 200, description: "`{approvals: Approval[]}`, newest first." },
    },
    async (c) => {
      const status = c.req.query("status") ?? "pending";
      if (!STATUSES.includes(status))
        throw new HttpError(400, "invalid_query", `\`status\` must be one of ${STATUSES.join(", ")}`);
      const approvals = await ctx.warden.store.listApprovals(
        status === "all" ? {} : { status: status as ApprovalStatus },
      );
      approvals.sort((a, b) => b.createdAt - a.createdAt);
      return c.json({ approvals });
    },
  );

  for (const [action, status] of [
    ["approve", "approved"],
    ["deny", "denied"],
  ] as const) {
    route.approver(
      {
        at: `POST /v1/approvals/:id/${action}`,
        summary: `${action === "approve" ? "Approve" : "Deny"} a pending call, with an optional reason; the approver is the key's holder.`,
        body: ApprovalDecisionSchema,
        response: { status: 200, description: "The decided approval.", schema: ApprovalSchema },
      },
      async (c) => {
        const { reason } = await parseBody(c, ApprovalDecisionSchema, true);
        const id = param(c, "id");
        const identity = c.get("identity");
        const decided = await ctx.warden.approvals.settle(id, status, identity.name, reason);
        if (!decided) {
          const existing = await ctx.warden.store.getApproval(id);
          if (!existing) throw new HttpError(404, "not_found", `no approval \`${id}\``);
          throw new HttpError(409, "not_pending", `approval \`${id}\` is ${existing.status}, not pending`);
        }
        ctx.bus.emit({ type: "approval", approval: decided });
        await ctx.warden.appendAudit(
          approvalEvent(decided, status, identity.name, reason, { key: identity.id }),
        );
        return c.json(decided);
      },
    );
  }
};
