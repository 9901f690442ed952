import { createRoute, z } from "@hono/zod-openapi";
import { jsonBody, optionalJsonBody } from "../../lib/http/json-body";
import { optionalRotationBody } from "../../lib/keys/rotation";
import { errorResponses, optionalIdempotencyKeyHeader } from "../../lib/http/openapi";
import { cursorParam, limitParam } from "../../lib/http/paging";
import { requirePartnerKey } from "../../lib/auth/partner-auth";
import { CONTROL_CHARS } from "../orgs/model";

const tags = ["Partner"];
const security = [{ partnerKeyAuth: [] }];
const BASE = "/api/v1/partner/organizations";

export const PartnerOrganization = z
  .object({
    userId: z.number().int().nullable().openapi({ example: 4271 }),
    organizationIdentifier: z.string().uuid().openapi({ example: "8e1d7b1a-6c4d-4e3a-9b2d-3f6e4c2b1ad0" }),
    organizationSlug: z.string().nullable().openapi({ example: "acme-corp" }),
    clientKey: z.string().nullable().openapi({
      description: "The client key (ck_live_…): plaintext only in the provisioning and rotation responses, else null.",
      example: "ck_live_7M2K9Q4W_1E8R5T3Y6V0P2A4S6DH8JKMN2PCHZ8G",
    }),
    serverKey: z.string().nullable().openapi({
      description: "The server key (sk_live_…): plaintext only in the provisioning and rotation responses, else null.",
      example: "sk_live_9Z8Y7X6W_5V4T3S2R1Q0P9N8M7KA1B2C31C29RJ5",
    }),
    partnerExternalId: z.string().nullable().openapi({ example: "acme-corp" }),
    clientKeyPrefix: z.string().nullable().openapi({ description: "8 characters after ck_live_.", example: "7M2K9Q4W" }),
    serverKeyPrefix: z.string().nullable().openapi({ description: "8 characters after sk_live_.", example: "9Z8Y7X6W" }),
    clientKeyLastUsedAt: z.string().nullable().openapi({
      description: "The minute the current client key last verified or authenticated; null if never (or in a minting response).",
      example: "2026-11-22T10:04:00.000Z",
    }),
    serverKeyLastUsedAt: z.string().nullable().openapi({ description: "The same for the current server key.", example: null }),
  })
  .openapi("PartnerOrganization");

const OptionalIdempotencyKey = optionalIdempotencyKeyHeader("Optional. Scoped to your partner key: a replay returns the same organization with keys null.");

export const ProvisionBody = z
  .object({
    externalId: z
      .string({ error: "Must be a string." })
      .min(1, "Must not be empty.")
      .max(128, "Must be at most 128 characters.")
      .refine((s) => !CONTROL_CHARS.test(s), "Must not contain control characters.")
      .openapi({ example: "acme-corp" }),
    email: z
      .string({ error: "Must be a string." })
      .trim()
      .max(254, "Must be at most 254 characters.")
      .pipe(z.email("Must be an email address."))
      .openapi({ example: "owner@acme.example.com" }),
    businessName: z
      .string({ error: "Must be a string." })
      .trim()
      .max(200, "Must be at most 200 characters.")
      .refine((s) => !CONTROL_CHARS.test(s), "Must not contain control characters.")
      .optional()
      .openapi({ example: "Acme Corp" }),
  })
  .openapi("PartnerOrganizationProvisionRequest");

const ok = (description: string, schema: z.ZodType) => ({ description, content: { "application/json": { schema } } });

export const provisionRoute = createRoute({
  operationId: "provisionPartnerOrganization",
  method: "post",
  path: BASE,
  tags,
  security,
  summary: "Provision an organization",
  description:
    "Creates the owner user, the organization, a client key and a server key, and queues the welcome / set-password " +
    "email, in one transaction. The keys are in this response only. 400 if `externalId` exists for this partner, " +
    "409 if `email` belongs to any user.",
  middleware: [requirePartnerKey, ...jsonBody] as const,
  request: {
    headers: OptionalIdempotencyKey,
    body: { required: true, content: { "application/json": { schema: ProvisionBody } } },
  },
  responses: {
    201: ok("Organization provisioned (or replayed, with keys null and Idempotent-Replayed: true).", PartnerOrganization),
    ...errorResponses([400, 401, 409, 413, 415, 422, 500], {
      400: "VALIDATION_FAILED (with details), EXTERNAL_ID_TAKEN, or INVALID_JSON",
      409: "EMAIL_TAKEN",
      422: "IDEMPOTENCY_KEY_REUSED",
    }),
  },
});

export const listRoute = createRoute({
  operationId: "listPartnerOrganizations",
  method: "get",
  path: BASE,
  tags,
  security,
  summary: "List partner organizations",
  description: "Your organizations, newest first, a page at a time. `count` is the total that matches.",
  middleware: [requirePartnerKey] as const,
  request: {
    query: z.object({
      external_id: z.string().max(128).optional().openapi({ example: "acme-corp" }),
      limit: limitParam(100, 100),
      cursor: cursorParam.optional(),
    }),
  },
  responses: {
    200: ok(
      "A page of organizations.",
      z
        .object({
          results: z.array(PartnerOrganization),
          count: z.number().int(),
          next: z.string().nullable().openapi({ description: "Cursor of the next page, or null on the last." }),
        })
        .openapi("PartnerOrganizationList"),
    ),
    ...errorResponses([400, 401]),
  },
});

const IdentifierParam = z.object({
  identifier: z
    .string()
    .uuid("Must be an organization UUID.")
    .openapi({ param: { name: "identifier", in: "path" }, example: "8e1d7b1a-6c4d-4e3a-9b2d-3f6e4c2b1ad0" }),
});

export const getByIdentifierRoute = createRoute({
  operationId: "getPartnerOrganization",
  method: "get",
  path: `${BASE}/{identifier}`,
  tags,
  security,
  summary: "Get a partner organization by identifier",
  middleware: [requirePartnerKey] as const,
  request: { params: IdentifierParam },
  responses: {
    200: ok("Organization details (keys null).", PartnerOrganization),
    ...errorResponses([400, 401, 404], { 400: "VALIDATION_FAILED: the identifier is not a UUID", 404: "NOT_FOUND: unknown, or another partner's" }),
  },
});

export const getByExternalIdRoute = createRoute({
  operationId: "getPartnerOrganizationByExternalId",
  method: "get",
  path: `${BASE}/by-external-id/{externalId}`,
  tags,
  security,
  summary: "Get a partner organization by external ID",
  middleware: [requirePartnerKey] as const,
  request: {
    params: z.object({
      externalId: z
        .string()
        .min(1)
        .max(128)
        .openapi({ param: { name: "externalId", in: "path" }, example: "acme-corp" }),
    }),
  },
  responses: {
    200: ok("Organization details (keys null).", PartnerOrganization),
    ...errorResponses([400, 401, 404], { 404: "NOT_FOUND: unknown, or another partner's" }),
  },
});

export const rotateKeysRoute = createRoute({
  operationId: "rotatePartnerOrganizationKeys",
  method: "post",
  path: `${BASE}/{identifier}/rotate-keys`,
  tags,
  security,
  summary: "Rotate an organization's client and server keys",
  description:
    "Mints a new client key and server key, shown once. The old ones stop working at once, or after " +
    "`expire_previous_in_seconds` (optional body) so the customer can move its clients over without downtime. " +
    "Only for an active organization: a suspended or revoked one answers 409 ORG_STATE_CONFLICT and gets no keys.",
  middleware: [requirePartnerKey, ...optionalJsonBody] as const,
  request: { params: IdentifierParam, headers: OptionalIdempotencyKey, body: optionalRotationBody },
  responses: {
    200: ok("The organization with its new keys.", PartnerOrganization),
    ...errorResponses([400, 401, 404, 409, 422, 500], {
      409: "ORG_STATE_CONFLICT: the organization is not active (suspended or revoked): no new keys",
      422: "IDEMPOTENCY_KEY_REUSED",
    }),
  },
});
