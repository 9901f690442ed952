// Body gatekeeping for JSON routes, in the order a client can act on: 413, 415, then 400 INVALID_JSON.
// Zod validation runs after this and reuses the parsed body (Hono caches it).
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { AppEnv } from "./context";
import { ApiError, errorResponse } from "./errors";

export const MAX_BODY_BYTES = 64 * 1024;

const JSON_MEDIA_TYPE = /^application\/(?:[a-z0-9.+-]+\+)?json\s*(?:;.*)?$/i;

const limitBody = bodyLimit({
  maxSize: MAX_BODY_BYTES,
  onError: (c) => errorResponse(c, new ApiError(413, "PAYLOAD_TOO_LARGE", `The body must be at most ${MAX_BODY_BYTES} bytes.`)),
});

/** 415 for a body that is not application/json, 400 INVALID_JSON for one that does not parse (no size limit). */
export const parseJson: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (!JSON_MEDIA_TYPE.test(c.req.header("content-type") ?? "")) {
    throw new ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "The body must be application/json.");
  }
  try {
    await c.req.json();
  } catch (err) {
    if (err instanceof SyntaxError) throw new ApiError(400, "INVALID_JSON", "The body is not valid JSON.");
    throw err; // e.g. the body limit tripping mid-stream: handled by limitBody
  }
  await next();
};

export const jsonBody: MiddlewareHandler<AppEnv>[] = [limitBody, parseJson];

/**
 * For routes whose JSON body is optional: no body at all (or an empty one, as clients send with Content-Length: 0)
 * is fine; any other body gets the same checks as jsonBody.
 */
export const optionalJsonBody: MiddlewareHandler<AppEnv>[] = [
  limitBody,
  async (c, next) => {
    const empty = c.req.raw.body === null || (await c.req.arrayBuffer()).byteLength === 0;
    if (empty && c.req.header("content-type") === undefined) return next();
    return parseJson(c, next);
  },
];
