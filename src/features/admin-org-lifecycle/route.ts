import { createRoute, z } from "@hono/zod-openapi";
import { jsonBody } from "../../lib/http/json-body";
import { requireMasterKey } from "../../lib/auth/master-key";
import { Envelope, errorResponses, IdempotencyKeyHeader, masterSecurity } from "../../lib/http/openapi";
import { cursorParam, limitParam } from "../../lib/http/paging";
import { ORG_ID_PATTERN } from "../orgs/model";
import type { ResponseShape, Transition } from "./transitions";

export const OrgIdParam = z.object({
  org_id: z
    .string()
    .regex(ORG_ID_PATTERN, "Must match org_[a-z0-9_]{3,60}.")
    .openapi({ param: { name: "org_id", in: "path" }, example: "org_acme_2026_example" }),
});

export const ConfirmBody = z
  .object({
    confirm_org_id: z.string({ error: "Required: repeat the org_id of the path." }).openapi({ example: "org_acme_2026_example" }),
    idempotency_key: z.string().min(1).max(256).optional().openapi({ description: "Optional; must equal the Idempotency-Key header." }),
  })
  .openapi("ConfirmOrgRequest");

/** Billing suspend and rotate say why (it reaches partners and orgs in org.suspended / org.reactivated events). */
export const ReasonQuery = z.object({
  reason: z.enum(["billing", "dispute", "usage"], { error: "Must be billing, dispute or usage." }).default("billing").openapi({
    description:
      "Why: billing (payment failed, subscription ended, or paid again), dispute (a chargeback opened or won), usage (over the tier limit). Default billing.",
  }),
});

const at = (field: string) => ({ org_id: z.string(), [field]: z.string(), ...Envelope });

const SHAPES: Record<ResponseShape, z.ZodType> = {
  billing_suspended: z.object({ suspended: z.literal(true), ...at("suspended_at"), note: z.string() }).openapi("BillingSuspended"),
  suspended: z.object({ suspended: z.literal(true), ...at("suspended_at") }).openapi("OrgSuspended"),
  reactivated: z.object({ reactivated: z.literal(true), ...at("reactivated_at") }).openapi("OrgReactivated"),
  rotated: z
    .object({
      rotated: z.literal(true),
      ...at("rotated_at"),
      new_api_key: z.string().optional().openapi({ description: "The new client key (ck_live_): in the first response only." }),
      prefix: z.string().nullable().openapi({
        description: "The new client key's prefix; null when the payment worker restored the org (no keys: the owner makes new ones in the console).",
      }),
      new_server_api_key: z.string().optional().openapi({ description: "The new server key (sk_live_): in the first response only." }),
      server_prefix: z.string().nullable().openapi({ description: "The new server key's prefix (null as above)." }),
      warning: z.string().optional(),
    })
    .openapi("OrgKeyRotated"),
  revoked: z.object({ revoked: z.literal(true), ...at("revoked_at") }).openapi("OrgRevoked"),
};

export function transitionRoute(t: Transition) {
  const states = `Changes an org that is ${t.from.join(" or ")}${t.noop.length ? `; a no-op 200 when ${t.noop.join(" or ")}` : ""}; 409 ORG_STATE_CONFLICT otherwise.`;
  return createRoute({
    operationId: t.name,
    method: "post",
    path: t.path,
    tags: ["Admin (master-key)"],
    summary: t.summary,
    description: states,
    security: masterSecurity(t.scope),
    middleware: [requireMasterKey(t.scope), ...(t.confirmBody ? jsonBody : [])],
    request: {
      params: OrgIdParam,
      headers: IdempotencyKeyHeader,
      ...(t.reasonQuery ? { query: ReasonQuery } : {}),
      ...(t.confirmBody ? { body: { required: true, content: { "application/json": { schema: ConfirmBody } } } } : {}),
    },
    responses: {
      200: { description: "Done (or a no-op, or a replay with Idempotent-Replayed: true).", content: { "application/json": { schema: SHAPES[t.shape] } } },
      ...errorResponses([400, 401, 404, 409, ...(t.confirmBody ? [413, 415] : []), 422, 500], {
        409: "ORG_STATE_CONFLICT: not allowed from the org's current state",
        422: "VALIDATION_FAILED (malformed org_id, confirm_org_id mismatch) or IDEMPOTENCY_KEY_REUSED",
      }),
    },
  });
}

const OrgUsage = z
  .object({
    org_id: z.string(),
    tier: z.string(),
    status: z.enum(["active", "suspended", "billing_suspended", "revoked"]),
    active: z.boolean(),
    interaction_count_current_period: z.number().int(),
    period_start: z.string(),
    period_end: z.string(),
    tier_limit: z.number().int(),
    utilization_ratio: z.number(),
    threshold_crossed: z.boolean(),
    status_changed_at: z.string().nullable().openapi({
      description:
        "When the org last changed status (null: never since it was created). The payment worker's sweep keys its suspensions by it, so a restored org over its limit is suspended again.",
    }),
  })
  .openapi("OrgUsage");

export const usageListRoute = createRoute({
  operationId: "listOrgUsage",
  method: "get",
  path: "/v1/admin/org/usage",
  tags: ["Admin (master-key)"],
  summary: "Usage of every active org, a page at a time (the payment worker's threshold sweep)",
  security: masterSecurity("ORG_USAGE_READ"),
  middleware: [requireMasterKey("ORG_USAGE_READ")] as const,
  request: {
    query: z.object({
      limit: limitParam(500, 100),
      cursor: cursorParam.optional(),
      threshold_crossed: z.enum(["true", "false"]).optional().openapi({ description: "Only orgs at or over (true) or under (false) their limit." }),
    }),
  },
  responses: {
    200: {
      description: "Active orgs in creation order; `next` is the cursor of the next page, or null.",
      content: { "application/json": { schema: z.object({ results: z.array(OrgUsage), next: z.string().nullable(), ...Envelope }) } },
    },
    ...errorResponses([401, 422]),
  },
});

export const usageRoute = createRoute({
  operationId: "getOrgUsage",
  method: "get",
  path: "/v1/admin/org/{org_id}/usage",
  tags: ["Admin (master-key)"],
  summary: "The org's verified requests in the rolling 30 days, against its tier limit",
  security: masterSecurity("ORG_USAGE_READ"),
  middleware: [requireMasterKey("ORG_USAGE_READ")] as const,
  request: { params: OrgIdParam },
  responses: {
    200: {
      description: "Usage of the current period.",
      content: {
        "application/json": {
          schema: OrgUsage.extend(Envelope),
        },
      },
    },
    ...errorResponses([401, 404, 422]),
  },
});
