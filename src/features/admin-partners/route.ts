import { createRoute, z } from "@hono/zod-openapi";
import { jsonBody, optionalJsonBody } from "../../lib/http/json-body";
import { requireMasterKey } from "../../lib/auth/master-key";
import { Envelope, errorResponses, IdempotencyKeyHeader, masterSecurity } from "../../lib/http/openapi";
import { optionalRotationBody } from "../../lib/keys/rotation";
import { OrgName } from "../orgs/model";

const tags = ["Admin (master-key)"];
const security = masterSecurity("PARTNER_ADMIN");
const auth = requireMasterKey("PARTNER_ADMIN");

export const PARTNER_ID_PATTERN = /^ptn_[0-9A-HJKMNP-TV-Z]{26}$/;
const PartnerIdParam = z.object({
  partner_id: z
    .string()
    .regex(PARTNER_ID_PATTERN, "Must be a partner id: ptn_ + 26 characters.")
    .openapi({ param: { name: "partner_id", in: "path" }, example: "ptn_01JD8Z3Q4W5E6R7T8Y9V0A1B2C" }),
});

const PartnerKeyIssued = {
  partner_key: z.string().openapi({
    description: "kvqp_ + 8 (its prefix) + _ + 31 characters (the last 7 a CRC32 checksum). Shown once; never stored.",
    example: "kvqp_7M2K9Q4W_1E8R5T3Y6V0P2A4S6DB2C4D63HZKPYE",
  }),
  prefix: z.string().openapi({ example: "7M2K9Q4W" }),
  warning: z.string(),
};

export const createPartnerRoute = createRoute({
  operationId: "createPartner",
  method: "post",
  path: "/v1/admin/partners",
  tags,
  security,
  summary: "Create a partner and mint its partner key",
  middleware: [auth, ...jsonBody] as const,
  request: {
    headers: IdempotencyKeyHeader,
    body: {
      required: true,
      content: { "application/json": { schema: z.object({ name: OrgName.openapi({ example: "Reseller Inc" }) }).openapi("PartnerCreateRequest") } },
    },
  },
  responses: {
    201: {
      description: "Created. A replay of the Idempotency-Key returns the partner without its key.",
      content: {
        "application/json": {
          schema: z
            .object({ partner_id: z.string(), name: z.string(), created_at: z.string(), ...PartnerKeyIssued, ...Envelope })
            .partial({ partner_key: true, warning: true })
            .openapi("PartnerCreated"),
        },
      },
    },
    ...errorResponses([400, 401, 413, 415, 422, 500]),
  },
});

const PartnerSummary = z
  .object({
    partner_id: z.string(),
    name: z.string(),
    active: z.boolean(),
    prefix: z.string().nullable().openapi({ description: "The live key's prefix (null when none)." }),
    org_count: z.number().int(),
    created_at: z.string(),
  })
  .openapi("PartnerSummary");

export const listPartnersRoute = createRoute({
  operationId: "listPartners",
  method: "get",
  path: "/v1/admin/partners",
  tags,
  security,
  summary: "List partners (no keys)",
  middleware: [auth] as const,
  responses: {
    200: {
      description: "Every partner, oldest first.",
      content: { "application/json": { schema: z.object({ results: z.array(PartnerSummary), count: z.number().int(), ...Envelope }) } },
    },
    ...errorResponses([401]),
  },
});

export const rotatePartnerKeyRoute = createRoute({
  operationId: "rotatePartnerKey",
  method: "post",
  path: "/v1/admin/partners/{partner_id}/rotate-key",
  tags,
  security,
  summary: "Mint a new partner key; the old one stops working at once, or after expire_previous_in_seconds",
  middleware: [auth, ...optionalJsonBody] as const,
  request: { params: PartnerIdParam, headers: IdempotencyKeyHeader, body: optionalRotationBody },
  responses: {
    200: {
      description: "Rotated. A replay returns the prefix without the key.",
      content: {
        "application/json": {
          schema: z
            .object({ rotated: z.boolean(), partner_id: z.string(), rotated_at: z.string(), ...PartnerKeyIssued, ...Envelope })
            .partial({ partner_key: true, warning: true }),
        },
      },
    },
    ...errorResponses([400, 401, 404, 409, 422, 500], { 409: "PARTNER_INACTIVE: a deactivated partner gets no new key" }),
  },
});

export const deactivatePartnerRoute = createRoute({
  operationId: "deactivatePartner",
  method: "post",
  path: "/v1/admin/partners/{partner_id}/deactivate",
  tags,
  security,
  summary: "Deactivate a partner: its key stops working; its organizations stay",
  middleware: [auth] as const,
  request: { params: PartnerIdParam, headers: IdempotencyKeyHeader },
  responses: {
    200: {
      description: "Deactivated (a repeat is a no-op with the original time).",
      content: {
        "application/json": {
          schema: z.object({ deactivated: z.literal(true), partner_id: z.string(), deactivated_at: z.string(), ...Envelope }),
        },
      },
    },
    ...errorResponses([400, 401, 404, 422]),
  },
});
