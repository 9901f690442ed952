// Keyset paging shared by every list: a `limit` query parameter and an opaque cursor over an ever-growing sequence.
import { z } from "@hono/zod-openapi";
import { ApiError } from "./errors";

/** `limit`: an integer from 1 to `max`, default `fallback`. */
export const limitParam = (max: number, fallback: number) => {
  const message = `Must be an integer from 1 to ${max}.`;
  return z.coerce.number({ error: message }).int(message).min(1, message).max(max, message).default(fallback);
};

export const cursorParam = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,40}$/, "Not a cursor from this API.")
  .openapi({ description: "The `next` value of the previous page." });

const base64url = (s: string) => btoa(s).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");

/** An opaque cursor for position `seq` of list `kind` (a cursor of one list is refused by another). */
export const encodeCursor = (kind: string, seq: number) => base64url(`${kind}:${seq}`);

/** The position in a cursor, or 400/422 VALIDATION_FAILED naming the `cursor` query parameter. */
export function decodeCursor(kind: string, cursor: string, status: 400 | 422): number {
  let text = "";
  try {
    text = atob(cursor.replace(/-/g, "+").replace(/_/g, "/"));
  } catch {
    // reported below
  }
  const m = new RegExp(`^${kind}:(\\d{1,15})$`).exec(text);
  if (!m) {
    throw new ApiError(status, "VALIDATION_FAILED", "The request is not valid.", [
      { location: "query", field: "cursor", message: "Not a cursor from this API." },
    ]);
  }
  return Number(m[1]);
}
