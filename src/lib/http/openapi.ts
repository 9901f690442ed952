// Shared OpenAPI pieces: the error schema, error responses by status, the Idempotency-Key header, security.
import { z } from "@hono/zod-openapi";
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "./context";
import { MASTER_SCOPES, type MasterScope, masterKeySecretName } from "../auth/master-key";

export const Envelope = {
  request_id: z.string().openapi({ example: "req_01JD8Z3Q4W5E6R7T8Y9V0N1P2A" }),
  timestamp: z.string().openapi({ example: "2026-11-22T10:00:00.000Z" }),
};

export const ErrorSchema = z
  .object({
    error: z.string().openapi({ example: "VALIDATION_FAILED" }),
    message: z.string(),
    details: z.array(z.object({ location: z.enum(["body", "header", "path", "query"]), field: z.string(), message: z.string() })).optional(),
    ...Envelope,
  })
  .openapi("Error");

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: "INVALID_JSON (body is not JSON) or VALIDATION_FAILED (bad or missing header)",
  401: "UNAUTHORIZED: missing or invalid credentials (one uniform body)",
  403: "KEY_TYPE_NOT_ALLOWED: a valid client key (ck_live_) on a route that needs the server key (sk_live_); KEY_RETIRING: a key in its overlap window on a route that rotates or revokes keys",
  404: "NOT_FOUND",
  409: "Conflict",
  413: "PAYLOAD_TOO_LARGE: body over 64 KiB",
  415: "UNSUPPORTED_MEDIA_TYPE: body is not application/json",
  422: "VALIDATION_FAILED (with details) or IDEMPOTENCY_KEY_REUSED",
  429: "RATE_LIMITED, with Retry-After",
  500: "SERVER_MISCONFIGURED (pepper missing) or INTERNAL",
};

/** What each status's body looks like (its example in the document): the error a client most often meets there. */
const ERROR_EXAMPLES: Record<number, { error: string; message: string; details?: { location: string; field: string; message: string }[] }> = {
  400: { error: "INVALID_JSON", message: "The body is not valid JSON." },
  401: { error: "UNAUTHORIZED", message: "Missing or invalid credentials." },
  403: {
    error: "KEY_TYPE_NOT_ALLOWED",
    message: "This route needs the organization's server key (sk_live_…); a client key (ck_live_…) cannot administer the organization.",
  },
  404: { error: "NOT_FOUND", message: "No such organization." },
  409: { error: "ORG_STATE_CONFLICT", message: "The organization is revoked; this action applies when it is active or suspended." },
  413: { error: "PAYLOAD_TOO_LARGE", message: "The body must be at most 65536 bytes." },
  415: { error: "UNSUPPORTED_MEDIA_TYPE", message: "The body must be application/json." },
  422: { error: "VALIDATION_FAILED", message: "The request is not valid.", details: [{ location: "body", field: "name", message: "Required." }] },
  429: { error: "RATE_LIMITED", message: "Too many requests; retry after the time in Retry-After." },
  500: { error: "SERVER_MISCONFIGURED", message: "The service is not configured to mint keys." },
};
const EXAMPLE_ENVELOPE = { request_id: "req_01JD8Z3Q4W5E6R7T8Y9V0N1P2A", timestamp: "2026-11-22T10:00:00.000Z" };

/** Error responses for the given statuses; `overrides` replaces a description where a route says more. */
export function errorResponses(statuses: number[], overrides: Record<number, string> = {}) {
  return Object.fromEntries(
    statuses.map((s) => [
      s,
      {
        description: overrides[s] ?? ERROR_DESCRIPTIONS[s],
        content: { "application/json": { schema: ErrorSchema, ...(ERROR_EXAMPLES[s] ? { example: { ...ERROR_EXAMPLES[s], ...EXAMPLE_ENVELOPE } } : {}) } },
      },
    ]),
  );
}

export const IdempotencyKeyHeader = z.object({
  "Idempotency-Key": z
    .string({ error: "The Idempotency-Key header is required." })
    .min(1, "The Idempotency-Key header must not be empty.")
    .max(256, "The Idempotency-Key header must be at most 256 characters.")
    .openapi({
      param: { name: "Idempotency-Key", in: "header", required: true },
      description: "Unique per intended change (the Stripe event.id from a webhook). Replays return the cached result.",
      example: "evt_1QxYzAbCdEfGhIjK",
    }),
});

/** An optional Idempotency-Key header (partner POSTs, self-serve rotate), described per route. */
export const optionalIdempotencyKeyHeader = (description: string) =>
  z.object({
    "Idempotency-Key": z
      .string()
      .min(1, "The Idempotency-Key header must not be empty.")
      .max(256, "The Idempotency-Key header must be at most 256 characters.")
      .optional()
      .openapi({ param: { name: "Idempotency-Key", in: "header", required: false }, description }),
  });

export const masterSecurity = (scope: MasterScope) => [{ [`MasterKey_${scope}`]: [] }];

export function registerSecuritySchemes(app: OpenAPIHono<AppEnv>) {
  for (const scope of MASTER_SCOPES) {
    app.openAPIRegistry.registerComponent("securitySchemes", `MasterKey_${scope}`, {
      type: "apiKey",
      in: "header",
      name: "X-API-Key",
      description: `The secret ${masterKeySecretName(scope)}. Only this scope's secret is accepted.`,
    });
  }
}
