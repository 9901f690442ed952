// Webhook endpoints, declared once for both owners: a partner (its partner key; the events of its orgs) under
// /api/v1/partner/webhook-endpoints, and an org (its server key; its own events) under /v1/admin/webhook-endpoints.
import { createRoute, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { EVENT_TYPES } from "../../lib/data/events";
import { requireControllingKey, requireOrgKey, requireServerKey } from "../../lib/auth/org-key-auth";
import { requirePartnerKey } from "../../lib/auth/partner-auth";
import type { AppEnv } from "../../lib/http/context";
import { jsonBody, optionalJsonBody } from "../../lib/http/json-body";
import { Envelope, errorResponses, optionalIdempotencyKeyHeader } from "../../lib/http/openapi";
import { cursorParam, limitParam } from "../../lib/http/paging";

export type OwnerType = "partner" | "org";

export const MAX_ENDPOINTS_PER_OWNER = 10;

export const EventTypeSchema = z.enum(EVENT_TYPES, { error: `Must be one of: ${EVENT_TYPES.join(", ")}.` });

export const WebhookEndpoint = z
  .object({
    id: z.string().openapi({ example: "whep_01JDA8Z3Q4W5E6R7T8Y9V0N1P2" }),
    url: z.string().openapi({ example: "https://hooks.acme.example.com/kelviq" }),
    event_types: z
      .array(EventTypeSchema)
      .nullable()
      .openapi({ description: "The types it receives; null: every type.", example: ["key.rotated", "org.suspended"] }),
    status: z.enum(["enabled", "failing", "disabled"]).openapi({
      description:
        "enabled; failing: an event ran out of retries (the next success enables it again); disabled: it answered 410 Gone (create a new endpoint to receive again).",
    }),
    status_reason: z.string().nullable(),
    previous_secret_expires_at: z.string().nullable().openapi({ description: "After a secret rotation: until then the old secret also signs." }),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("WebhookEndpoint");

const SecretField = {
  secret: z.string().openapi({
    description: "The signing secret (Standard Webhooks `whsec_…`): in this response only. Stored encrypted; nobody can show it again.",
    example: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw4lHdQ8cvEOA=",
  }),
};

export const CreateEndpointBody = z
  .object({
    url: z
      .string({ error: "Must be a string." })
      .min(1, "Must not be empty.")
      .max(2048, "Must be at most 2,048 characters.")
      .openapi({ example: "https://hooks.acme.example.com/kelviq" }),
    event_types: z
      .array(EventTypeSchema)
      .min(1, "Must list at least one type (omit it for every type).")
      .max(EVENT_TYPES.length)
      .refine((types) => new Set(types).size === types.length, "Must not repeat a type.")
      .nullable()
      .optional()
      .openapi({ description: "Only these types (omit or null: every type, including those added later)." }),
  })
  .openapi("WebhookEndpointCreateRequest");

const EndpointParams = z.object({
  endpoint_id: z
    .string()
    .regex(/^whep_[0-9A-HJKMNP-TV-Z]{26}$/, "Not a webhook endpoint id.")
    .openapi({ param: { name: "endpoint_id", in: "path" }, example: "whep_01JDA8Z3Q4W5E6R7T8Y9V0N1P2" }),
});
const EventParams = EndpointParams.extend({
  event_id: z
    .string()
    .regex(/^msg_[0-9a-f]{26}$/, "Not an event id.")
    .openapi({ param: { name: "event_id", in: "path" }, example: "msg_0c4f6e2a9b1d3f5a7c9e1b3d5f" }),
});

export const Attempt = z
  .object({
    id: z.number().int(),
    event_id: z.string().openapi({ example: "msg_0c4f6e2a9b1d3f5a7c9e1b3d5f" }),
    event_type: z.string().openapi({ example: "key.rotated" }),
    attempt: z.number().int().openapi({ description: "1 for the first attempt of this event to this endpoint." }),
    status_code: z.number().int().nullable().openapi({ description: "The endpoint's answer; null when none came (see error)." }),
    error: z.string().nullable().openapi({ description: "timeout, network_error or secret_unavailable, when no answer came.", example: null }),
    duration_ms: z.number().int(),
    attempted_at: z.string(),
    next_attempt_at: z.string().nullable().openapi({ description: "The retry this attempt scheduled; null when delivered or out of retries." }),
    delivery_status: z.enum(["pending", "delivering", "delivered", "failed"]).openapi({ description: "Where this event stands for this endpoint now." }),
  })
  .openapi("WebhookAttempt");

const ok = (description: string, schema: z.ZodType) => ({ description, content: { "application/json": { schema } } });

interface Surface {
  base: string;
  tags: string[];
  security: Record<string, string[]>[];
  auth: MiddlewareHandler<AppEnv>[];
  /** What changes an endpoint needs beyond auth (an org's retiring key controls nothing). */
  control: MiddlewareHandler<AppEnv>[];
  who: string;
  validation: 400 | 422;
}

export const SURFACES: Record<OwnerType, Surface> = {
  partner: {
    base: "/api/v1/partner/webhook-endpoints",
    tags: ["Partner webhooks"],
    security: [{ partnerKeyAuth: [] }],
    auth: [requirePartnerKey],
    control: [],
    who: "your organizations",
    validation: 400,
  },
  org: {
    base: "/v1/admin/webhook-endpoints",
    tags: ["Organization webhooks (API key)"],
    security: [{ OrgApiKey: [] }],
    auth: [requireOrgKey, requireServerKey],
    control: [requireControllingKey()],
    who: "your organization",
    validation: 422,
  },
};

/** The eight routes of one owner's endpoints. */
export function webhookRoutes(owner: OwnerType) {
  const s = SURFACES[owner];
  const id = owner === "partner" ? "Partner" : "Org";
  const common = { tags: s.tags, security: s.security };
  const auth = [401, 403, 429].filter((n) => owner === "org" || n !== 403);
  const v = s.validation;
  return {
    create: createRoute({
      ...common,
      method: "post",
      path: s.base,
      operationId: `create${id}WebhookEndpoint`,
      summary: "Add a webhook endpoint: its signing secret is shown once",
      description:
        `Events about ${s.who} are POSTed to \`url\`, signed the Standard Webhooks way with the secret in this response. ` +
        `An \`https\` URL with a host name (local runs also take \`http://localhost\` and \`http://127.0.0.1\`). At most ${MAX_ENDPOINTS_PER_OWNER} endpoints.`,
      middleware: [...s.auth, ...s.control, ...jsonBody] as const,
      request: {
        headers: optionalIdempotencyKeyHeader(
          "Optional. A retry with the same key and body gets the first answer without the secret (`Idempotent-Replayed: true`).",
        ),
        body: { required: true, content: { "application/json": { schema: CreateEndpointBody } } },
      },
      responses: {
        201: ok("Created.", WebhookEndpoint.extend({ ...SecretField, ...Envelope }).openapi(`${id}WebhookEndpointCreated`)),
        ...errorResponses([400, ...auth, 409, 413, 415, 422, 500], {
          400: v === 400 ? "VALIDATION_FAILED (with details) or INVALID_JSON" : "INVALID_JSON",
          409: `WEBHOOK_ENDPOINT_LIMIT: already ${MAX_ENDPOINTS_PER_OWNER} endpoints`,
          422: v === 422 ? "VALIDATION_FAILED (with details) or IDEMPOTENCY_KEY_REUSED" : "IDEMPOTENCY_KEY_REUSED",
          500: "SERVER_MISCONFIGURED (WEBHOOK_SECRET_KEY missing)",
        }),
      },
    }),
    list: createRoute({
      ...common,
      method: "get",
      path: s.base,
      operationId: `list${id}WebhookEndpoints`,
      summary: "List your webhook endpoints",
      middleware: [...s.auth] as const,
      responses: {
        200: ok(
          "Every endpoint, oldest first.",
          z.object({ results: z.array(WebhookEndpoint), count: z.number().int(), ...Envelope }).openapi(`${id}WebhookEndpointList`),
        ),
        ...errorResponses(auth),
      },
    }),
    get: createRoute({
      ...common,
      method: "get",
      path: `${s.base}/{endpoint_id}`,
      operationId: `get${id}WebhookEndpoint`,
      summary: "Get a webhook endpoint",
      middleware: [...s.auth] as const,
      request: { params: EndpointParams },
      responses: { 200: ok("The endpoint.", WebhookEndpoint.extend(Envelope)), ...errorResponses([v, ...auth, 404]) },
    }),
    remove: createRoute({
      ...common,
      method: "delete",
      path: `${s.base}/{endpoint_id}`,
      operationId: `delete${id}WebhookEndpoint`,
      summary: "Delete a webhook endpoint (its pending deliveries and attempt history go with it)",
      middleware: [...s.auth, ...s.control] as const,
      request: { params: EndpointParams },
      responses: {
        200: ok("Deleted.", z.object({ deleted: z.literal(true), id: z.string(), ...Envelope })),
        ...errorResponses([v, ...auth, 404]),
      },
    }),
    rotateSecret: createRoute({
      ...common,
      method: "post",
      path: `${s.base}/{endpoint_id}/rotate-secret`,
      operationId: `rotate${id}WebhookSecret`,
      summary: "Rotate the signing secret: the new one is shown once; the old one also signs for 24 hours",
      description:
        "Each delivery in the next 24 hours carries two `v1,` signatures, one per secret (Standard Webhooks verifies either), so you can deploy the new secret at your pace. " +
        "Rotating again within those 24 hours replaces the older secret at once.",
      middleware: [...s.auth, ...s.control, ...optionalJsonBody] as const,
      request: { params: EndpointParams },
      responses: {
        200: ok("Rotated.", WebhookEndpoint.extend({ ...SecretField, ...Envelope }).openapi(`${id}WebhookSecretRotated`)),
        ...errorResponses([v, ...auth, 404, 500], { 500: "SERVER_MISCONFIGURED (WEBHOOK_SECRET_KEY missing)" }),
      },
    }),
    test: createRoute({
      ...common,
      method: "post",
      path: `${s.base}/{endpoint_id}/test`,
      operationId: `send${id}WebhookTest`,
      summary: "Send a test event (webhook.test) to this endpoint",
      middleware: [...s.auth, ...s.control, ...optionalJsonBody] as const,
      request: { params: EndpointParams },
      responses: {
        202: ok("Queued: see its attempts.", z.object({ event_id: z.string(), type: z.literal("webhook.test"), status: z.literal("pending"), ...Envelope })),
        ...errorResponses([v, ...auth, 404, 409], { 409: "WEBHOOK_ENDPOINT_DISABLED: the endpoint answered 410 Gone" }),
      },
    }),
    attempts: createRoute({
      ...common,
      method: "get",
      path: `${s.base}/{endpoint_id}/attempts`,
      operationId: `list${id}WebhookAttempts`,
      summary: "List the delivery attempts of this endpoint, newest first",
      middleware: [...s.auth] as const,
      request: { params: EndpointParams, query: z.object({ limit: limitParam(100, 50), cursor: cursorParam.optional() }) },
      responses: {
        200: ok(
          "A page of attempts.",
          z
            .object({
              results: z.array(Attempt),
              next: z.string().nullable().openapi({ description: "Cursor of the next page, or null on the last." }),
              ...Envelope,
            })
            .openapi(`${id}WebhookAttemptList`),
        ),
        ...errorResponses([v, ...auth, 404]),
      },
    }),
    replay: createRoute({
      ...common,
      method: "post",
      path: `${s.base}/{endpoint_id}/events/{event_id}/replay`,
      operationId: `replay${id}WebhookEvent`,
      summary: "Send an event to this endpoint again, now (same webhook-id; the retry schedule starts over)",
      middleware: [...s.auth, ...s.control, ...optionalJsonBody] as const,
      request: { params: EventParams },
      responses: {
        202: ok("Queued.", z.object({ event_id: z.string(), endpoint_id: z.string(), status: z.literal("pending"), ...Envelope })),
        ...errorResponses([v, ...auth, 404, 409], {
          404: "NOT_FOUND: no such endpoint, or the event was never sent to it",
          409: "WEBHOOK_ENDPOINT_DISABLED: the endpoint answered 410 Gone",
        }),
      },
    }),
  };
}
