import { createRoute, z } from "@hono/zod-openapi";
import { AUDIT_EVENT_TYPES } from "../../lib/audit";
import { Envelope, errorResponses } from "../../lib/openapi";
import { requireOrgKey } from "../../lib/org-key-auth";
import { limitParam } from "../../lib/paging";

const tags = ["Organization (API key)"];
const security = [{ OrgApiKey: [] }];

export const rotateOwnKeyRoute = createRoute({
  method: "post",
  path: "/v1/admin/key/rotate",
  tags,
  security,
  summary: "Rotate the key you call with: a new key of the same type, shown once; the old one fails from now on",
  middleware: [requireOrgKey] as const,
  responses: {
    200: {
      description: "Rotated.",
      content: {
        "application/json": {
          schema: z.object({
            rotated: z.literal(true),
            org_id: z.string(),
            key_type: z.enum(["ck_live", "sk_live"]),
            new_api_key: z.string(),
            prefix: z.string(),
            rotated_at: z.string(),
            warning: z.string(),
            ...Envelope,
          }),
        },
      },
    },
    ...errorResponses([401, 429, 500]),
  },
});

export const revokeOwnKeyRoute = createRoute({
  method: "post",
  path: "/v1/admin/key/revoke",
  tags,
  security,
  summary: "Revoke the key you call with, for good",
  middleware: [requireOrgKey] as const,
  responses: {
    200: {
      description: "Revoked.",
      content: {
        "application/json": {
          schema: z.object({ revoked: z.literal(true), org_id: z.string(), prefix: z.string(), revoked_at: z.string(), ...Envelope }),
        },
      },
    },
    ...errorResponses([401, 429]),
  },
});

const isoInstant = z.iso
  .datetime({ offset: true, message: "Must be an ISO-8601 date-time, e.g. 2026-11-01T00:00:00Z." })
  .transform((s) => new Date(s).toISOString());

export const auditLogRoute = createRoute({
  method: "get",
  path: "/v1/admin/audit-log",
  tags,
  security,
  summary: "Your organization's audit log, newest first",
  middleware: [requireOrgKey] as const,
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
                created_at: z.string(),
              }),
            ),
            count: z.number().int(),
            ...Envelope,
          }),
        },
      },
    },
    ...errorResponses([401, 422, 429]),
  },
});
