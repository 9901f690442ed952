// The error envelope: { error, message, details?, request_id, timestamp }, and the handlers that produce it.
import type { ErrorHandler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ZodError } from "zod";
import { type AppContext, type AppEnv, envelope } from "./context";

export type ErrorCode =
  | "INVALID_JSON"
  | "VALIDATION_FAILED"
  | "EXTERNAL_ID_TAKEN"
  | "UNAUTHORIZED"
  | "KEY_TYPE_NOT_ALLOWED"
  | "KEY_RETIRING"
  | "NOT_FOUND"
  | "ORG_EXISTS"
  | "EMAIL_TAKEN"
  | "IDEMPOTENCY_KEY_IN_USE"
  | "PAYLOAD_TOO_LARGE"
  | "UNSUPPORTED_MEDIA_TYPE"
  | "IDEMPOTENCY_KEY_REUSED"
  | "RATE_LIMITED"
  | "PARTNER_INACTIVE"
  | "ORG_STATE_CONFLICT"
  | "TOKEN_INVALID"
  | "TOKEN_USED"
  | "TOKEN_EXPIRED"
  | "PASSWORD_ALREADY_SET"
  | "SERVER_MISCONFIGURED"
  | "WEBHOOK_ENDPOINT_LIMIT"
  | "WEBHOOK_ENDPOINT_DISABLED"
  | "INTERNAL";

export interface ErrorDetail {
  location: "body" | "header" | "path" | "query";
  field: string;
  message: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetail[],
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}

export function errorResponse(c: AppContext, err: ApiError): Response {
  const body = {
    error: err.code,
    message: err.message,
    ...(err.details ? { details: err.details } : {}),
    ...envelope(c),
  };
  return c.json(body, err.status, err.headers);
}

/** The one body every credential failure gets, whatever the reason (the reason goes to the audit log). */
export const unauthorized = () => new ApiError(401, "UNAUTHORIZED", "Missing or invalid credentials.");

const LOCATIONS = { json: "body", header: "header", param: "path", query: "query" } as const;

export function zodDetails(target: string, error: ZodError): ErrorDetail[] {
  const location = LOCATIONS[target as keyof typeof LOCATIONS] ?? "body";
  return error.issues.map((issue) => ({
    location,
    field: issue.path.length ? issue.path.join(".") : location === "body" ? "(body)" : "(unknown)",
    message: issue.message,
  }));
}

/**
 * Validation failures: a bad header is always 400 (docs/contract.md); a bad body, path or query is
 * `bodyStatus` — 422 on operator and org routes, 400 on partner routes, as each API documents.
 */
export const validationHook =
  (bodyStatus: 400 | 422) =>
  (result: { success: boolean; target: string; error?: ZodError }): undefined => {
    if (result.success || !result.error) return undefined;
    const status = result.target === "header" ? 400 : bodyStatus;
    throw new ApiError(status, "VALIDATION_FAILED", "The request is not valid.", zodDetails(result.target, result.error));
  };

export const onError: ErrorHandler<AppEnv> = (err, c) => {
  if (err instanceof ApiError) return errorResponse(c, err);
  if (err instanceof HTTPException && err.status < 500) {
    const code: ErrorCode = err.status === 413 ? "PAYLOAD_TOO_LARGE" : err.status === 415 ? "UNSUPPORTED_MEDIA_TYPE" : "VALIDATION_FAILED";
    return errorResponse(c, new ApiError(err.status as ContentfulStatusCode, code, err.message || "Bad request."));
  }
  // Unexpected: log the message (never a secret: none reaches an Error here) and answer without internals.
  console.error(JSON.stringify({ level: "error", request_id: c.get("requestId"), error: String(err) }));
  return errorResponse(c, new ApiError(500, "INTERNAL", "An unexpected error occurred."));
};

export const onNotFound: NotFoundHandler<AppEnv> = (c) => errorResponse(c, new ApiError(404, "NOT_FOUND", "No such resource."));
