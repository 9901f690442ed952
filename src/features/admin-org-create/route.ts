import { createRoute, z } from "@hono/zod-openapi";
import { jsonBody } from "../../lib/http/json-body";
import { requireMasterKey } from "../../lib/auth/master-key";
import { Envelope, errorResponses, IdempotencyKeyHeader, masterSecurity } from "../../lib/http/openapi";
import { AllowedOrigins, DOMAINS, ORG_ID_PATTERN, OrgName, TIERS } from "../orgs/model";

export const OrgCreateBody = z
  .object({
    org_id: z.string({ error: "Must be a string." }).regex(ORG_ID_PATTERN, "Must match org_[a-z0-9_]{3,60}.").openapi({ example: "org_acme_2026_example" }),
    name: OrgName.openapi({ example: "Acme Corp" }),
    domain: z.enum(DOMAINS, { error: `Must be one of: ${DOMAINS.join(", ")}.` }).openapi({ example: "general" }),
    tier: z.enum(TIERS, { error: `Must be one of: ${TIERS.join(", ")}.` }).openapi({ example: "starter" }),
    allowed_origins: AllowedOrigins,
    owner_email: z
      .string({ error: "Must be a string." })
      .trim()
      .max(254, "Must be at most 254 characters.")
      .pipe(z.email("Must be an email address."))
      .optional()
      .openapi({
        description:
          "Optional: the org's owner (an existing account is reused). They get the welcome email (set your password, or sign in) and manage the org's keys in the console.",
        example: "owner@acme.example.com",
      }),
  })
  .openapi("OrgCreateRequest");

const OrgCreated = z
  .object({
    org_id: z.string(),
    api_key: z.string().optional().openapi({
      description: "The org's client key (ck_live_…), present only in the first response. Never stored.",
      example: "ck_live_7M2K9Q4W_1E8R5T3Y6U0P2A4S6DXV9B3N1FRCF2V",
    }),
    prefix: z.string().nullable().openapi({
      example: "7M2K9Q4W",
      description: "null for an org created without keys (through the billing binding: the owner mints them in the console).",
    }),
    server_api_key: z.string().optional().openapi({
      description: "The org's server key (sk_live_…): administers the org's keys and reads its audit log. First response only; never stored.",
      example: "sk_live_3H8J2K5M_7N9P1Q4R6S8T0V2W4XJ5KD7F2T096QQ",
    }),
    server_prefix: z.string().nullable().openapi({ example: "3H8J2K5M" }),
    created_at: z.string(),
    warning: z.string().optional(),
    already_provisioned: z.boolean().optional().openapi({ description: "true on a replay of the same Idempotency-Key." }),
    ...Envelope,
  })
  .openapi("OrgCreated");

export const orgCreateRoute = createRoute({
  operationId: "createOrg",
  method: "post",
  path: "/v1/admin/org/create",
  tags: ["Admin (master-key)"],
  summary: "Provision a new org and mint its first API keys",
  description:
    "Creates the organization and mints its client key (`api_key`, publishable) and its server key " +
    "(`server_api_key`, secret), each returned exactly once. A replay of the same " +
    "Idempotency-Key and body returns the result without the key, with `already_provisioned: true` and the header " +
    "`Idempotent-Replayed: true`. The payment worker's binding calls create the org with its `owner_email` and no keys " +
    "(claim-to-mint: the owner mints them in the console, so no key is ever emailed).",
  security: masterSecurity("ORG_CREATE"),
  middleware: [requireMasterKey("ORG_CREATE"), ...jsonBody] as const,
  request: {
    headers: IdempotencyKeyHeader,
    body: { required: true, content: { "application/json": { schema: OrgCreateBody } } },
  },
  responses: {
    201: { description: "Created (or replayed).", content: { "application/json": { schema: OrgCreated } } },
    ...errorResponses([400, 401, 409, 413, 415, 422, 500], {
      409: "ORG_EXISTS: the org_id exists (created under another Idempotency-Key)",
    }),
  },
});
