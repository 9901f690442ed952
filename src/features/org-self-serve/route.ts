import { createRoute, z } from "@hono/zod-openapi";
import { AUDIT_EVENT_TYPES } from "../../lib/data/audit";
import { Envelope, errorResponses, optionalIdempotencyKeyHeader } from "../../lib/http/openapi";
import { optionalJsonBody } from "../../lib/http/json-body";
import { requireControllingKey, requireOrgKey, requireOrgKeyOrReplay, requireServerKey } from "../../lib/auth/org-key-auth";
import { replayOwnRotation } from "./handler";
import { limitParam } from "../../lib/http/paging";
import { ExpirePreviousInSeconds } from "../../lib/keys/rotation";

const tags = ["Organization (API key)"];
const security = [{ OrgApiKey: [] }];

const KEY_TYPES_OF_ORG = ["ck_live", "sk_live"] as const;

/** Optional body of rotate and revoke: which of the org's keys to act on (default: the calling key's type). */
export const KeyTypeBody = z
  .object({
    key_type: z
      .enum(KEY_TYPES_OF_ORG, { error: "Must be ck_live (the client key) or sk_live (the server key)." })
      .optional()
      .openapi({ description: "ck_live: the client key; sk_live: the server key. Default: the calling key's type (sk_live).", example: "ck_live" }),
  })
  .openapi("KeyTypeRequest");

export const RotateBody = KeyTypeBody.extend({ expire_previous_in_seconds: ExpirePreviousInSeconds }).openapi("RotateOwnKeyRequest");

const keyTypeBody = { required: false, content: { "application/json": { schema: KeyTypeBody } } };
const rotateBody = { required: false, content: { "application/json": { schema: RotateBody } } };

export const rotateOwnKeyRoute = createRoute({
  operationId: "rotateOwnKey",
  method: "post",
  path: "/v1/admin/key/rotate",
  tags,
  security,
  summary: "Rotate one of your org's keys: a new key of that type, shown once; the old one fails from now on",
  description:
    'Needs the server key. Without a body, rotates the server key you call with; with `{"key_type": "ck_live"}`, ' +
    "rotates the client key (for a client key that leaked out of a web page, or to restore one after a revoke). " +
    "`expire_previous_in_seconds` keeps the replaced key working that long, so clients can move over without downtime.",
  middleware: [requireOrgKeyOrReplay(replayOwnRotation), requireServerKey, requireControllingKey(replayOwnRotation), ...optionalJsonBody] as const,
  request: {
    headers: optionalIdempotencyKeyHeader(
      "Optional. Scoped to the calling key. A retry with the same key and body gets the first answer (prefix only, `Idempotent-Replayed: true`), even after that rotation retired the calling key.",
    ),
    body: rotateBody,
  },
  responses: {
    200: {
      description: "Rotated.",
      content: {
        "application/json": {
          schema: z.object({
            rotated: z.literal(true),
            org_id: z.string(),
            key_type: z.enum(KEY_TYPES_OF_ORG),
            new_api_key: z.string().optional().openapi({ description: "The new key: in the first response only (a replay has the prefix alone)." }),
            prefix: z.string(),
            rotated_at: z.string(),
            warning: z.string().optional(),
            ...Envelope,
          }),
        },
      },
    },
    ...errorResponses([400, 401, 403, 413, 415, 422, 429, 500]),
  },
});

export const revokeOwnKeyRoute = createRoute({
  operationId: "revokeOwnKey",
  method: "post",
  path: "/v1/admin/key/revoke",
  tags,
  security,
  summary: "Revoke one of your org's keys for good",
  description:
    'Needs the server key. Without a body, revokes the server key you call with; with `{"key_type": "ck_live"}`, ' +
    "revokes the client key (rotate with the same body to get a new one).",
  middleware: [requireOrgKey, requireServerKey, requireControllingKey(), ...optionalJsonBody] as const,
  request: { body: keyTypeBody },
  responses: {
    200: {
      description: "Revoked.",
      content: {
        "application/json": {
          schema: z.object({
            revoked: z.literal(true),
            org_id: z.string(),
            key_type: z.enum(KEY_TYPES_OF_ORG),
            prefix: z.string(),
            revoked_at: z.string(),
            ...Envelope,
          }),
        },
      },
    },
    ...errorResponses([400, 401, 403, 404, 413, 415, 422, 429], { 404: "NOT_FOUND: the org has no live key of this type" }),
  },
});

const isoInstant = z.iso
  .datetime({ offset: true, message: "Must be an ISO-8601 date-time, e.g. 2026-11-01T00:00:00Z." })
  .transform((s) => new Date(s).toISOString());

export const auditLogRoute = createRoute({
  operationId: "listAuditLog",
  method: "get",
  path: "/v1/admin/audit-log",
  tags,
  security,
  summary: "Your organization's audit log, newest first (server key only)",
  middleware: [requireOrgKey, requireServerKey] as const,
  request: {
    query: z
      .object({
        event_type: z.enum(AUDIT_EVENT_TYPES, { error: "Must be a known event type." }).optional(),
        since: isoInstant.optional().openapi({ description: "Inclusive.", example: "2026-11-01T00:00:00Z" }),
        until: isoInstant.optional().openapi({ description: "Exclusive.", example: "2026-12-01T00:00:00Z" }),
        limit: limitParam(500, 100),
      })
      .refine((q) => !q.since || !q.until || q.since < q.until, { message: "since must be before until.", path: ["since"] }),
  },
  responses: {
    200: {
      description: "Audit rows of your organization only.",
      content: {
        "application/json": {
          schema: z.object({
            results: z.array(
              z.object({
                id: z.number().int(),
                event_type: z.string(),
                actor: z.string(),
                key_prefix: z.string().nullable(),
                request_id: z.string(),
                detail: z.string().nullable(),
                count: z.number().int().openapi({
                  description: "How many events this row stands for: auth failures and rate-limit refusals are counted into one row per subject per minute.",
                }),
                created_at: z.string(),
              }),
            ),
            count: z.number().int(),
            ...Envelope,
          }),
        },
      },
    },
    ...errorResponses([401, 403, 422, 429]),
  },
});

export const OrgKey = z
  .object({
    key_type: z.enum(KEY_TYPES_OF_ORG),
    prefix: z.string().openapi({ example: "7M2K9Q4W" }),
    status: z.enum(["active", "expiring", "revoked", "expired"]).openapi({
      description: "active: no end; expiring: replaced, works until expires_at; expired: its window ended; revoked: revoked.",
    }),
    created_at: z.string(),
    expires_at: z.string().nullable(),
    revoked_at: z.string().nullable(),
    last_used_at: z
      .string()
      .nullable()
      .openapi({ description: "The minute it last authenticated or verified (written within seconds, off the request path)." }),
  })
  .openapi("OrgKey");

export const listKeysRoute = createRoute({
  operationId: "listOwnKeys",
  method: "get",
  path: "/v1/admin/keys",
  tags,
  security,
  summary: "Your organization's keys, newest first (server key only): type, prefix, status, times, last use",
  description: "Never a hash or a plaintext key.",
  middleware: [requireOrgKey, requireServerKey] as const,
  request: { query: z.object({ limit: limitParam(500, 100) }) },
  responses: {
    200: {
      description: "The org's keys.",
      content: { "application/json": { schema: z.object({ results: z.array(OrgKey), count: z.number().int(), ...Envelope }) } },
    },
    ...errorResponses([401, 403, 422, 429]),
  },
});
