import { createRoute, z } from "@hono/zod-openapi";
import { jsonBody } from "../../lib/http/json-body";
import { Envelope, errorResponses } from "../../lib/http/openapi";
import { requirePartnerKey } from "../../lib/auth/partner-auth";
import { PASSWORD_MAX, PASSWORD_MIN } from "./crypto";

const Token = z
  .string({ error: "Required." })
  .regex(/^[A-Za-z0-9_-]{43}$/, "Not a set-password token.")
  .openapi({ description: "The token from the link's #token= fragment.", example: "PxwCHrWPIosmjtUYSbe6ICI0d9OclxMwKppIBUpEL5A" });

const codePoints = (s: string) => Array.from(s).length;

const tokenErrors = errorResponses([400, 410, 429], {
  400: "VALIDATION_FAILED (with details) or TOKEN_INVALID (no such link)",
  410: "TOKEN_USED (already used, or replaced by a newer link) or TOKEN_EXPIRED (older than 72 hours)",
});

export const checkTokenRoute = createRoute({
  operationId: "checkSetPasswordToken",
  method: "post",
  path: "/api/v1/auth/set-password/check",
  tags: ["Owner onboarding"],
  summary: "Is this set-password link still good?",
  middleware: jsonBody,
  request: { body: { required: true, content: { "application/json": { schema: z.object({ token: Token }) } } } },
  responses: {
    200: {
      description: "The link can be used.",
      content: { "application/json": { schema: z.object({ valid: z.literal(true), expires_at: z.string(), ...Envelope }) } },
    },
    ...tokenErrors,
  },
});

export const setPasswordRoute = createRoute({
  operationId: "setPassword",
  method: "post",
  path: "/api/v1/auth/set-password",
  tags: ["Owner onboarding"],
  summary: "Set the owner's password with a set-password link (single use)",
  middleware: jsonBody,
  request: {
    body: {
      required: true,
      content: {
        "application/json": {
          schema: z
            .object({
              token: Token,
              password: z
                .string({ error: "Required." })
                .refine((p) => codePoints(p) >= PASSWORD_MIN, `Must be at least ${PASSWORD_MIN} characters.`)
                .refine((p) => codePoints(p) <= PASSWORD_MAX, `Must be at most ${PASSWORD_MAX} characters.`)
                .openapi({ example: "correct horse battery staple" }),
            })
            .openapi("SetPasswordRequest"),
        },
      },
    },
  },
  responses: {
    200: {
      description: "The password is set; the link is used up.",
      content: { "application/json": { schema: z.object({ password_set: z.literal(true), ...Envelope }) } },
    },
    ...tokenErrors,
  },
});

export const resendInviteRoute = createRoute({
  operationId: "resendInvite",
  method: "post",
  path: "/api/v1/partner/organizations/{identifier}/resend-invite",
  tags: ["Partner"],
  security: [{ partnerKeyAuth: [] }],
  summary: "Send the owner a fresh set-password link (the old one stops working)",
  middleware: [requirePartnerKey] as const,
  request: {
    params: z.object({
      identifier: z
        .string()
        .uuid("Must be an organization UUID.")
        .openapi({ param: { name: "identifier", in: "path" } }),
    }),
  },
  responses: {
    202: {
      description: "A new email is queued.",
      content: { "application/json": { schema: z.object({ organizationIdentifier: z.string(), userId: z.number().int(), inviteQueued: z.literal(true) }) } },
    },
    ...errorResponses([400, 401, 404, 409, 429], {
      409: "PASSWORD_ALREADY_SET: the owner has set a password",
      429: "RATE_LIMITED: at most one resend per user per 10 minutes and 5 per 24 hours; Retry-After says when",
    }),
  },
});

const html = (description: string) => ({ 200: { description, content: { "text/html": { schema: z.string() } } } });

export const pageRoute = createRoute({
  operationId: "getSetPasswordPage",
  method: "get",
  path: "/set-password",
  tags: ["Owner onboarding"],
  summary: "The set-password page the welcome email links to (/set-password#token=…)",
  responses: html("A self-contained HTML page with a strict Content-Security-Policy."),
});
