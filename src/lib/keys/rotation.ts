// Rotation with overlap, shared by every rotation a customer, partner or operator asks for: the keys being replaced
// may live on for `expire_previous_in_seconds` (expires_at, set in the rotation's batch). A rotation during a window
// ends that window at once, so a type never has more than two live keys. Compromise paths (force-rotate,
// force-revoke, billing suspend, self-serve revoke) revoke outright and take no window.
import { z } from "@hono/zod-openapi";
import type { SqlExpression } from "../data/idempotency";
import { isoNow } from "../util/time";

export const MAX_WINDOW_SECONDS = 604_800; // 7 days

const message = `Must be an integer from 0 to ${MAX_WINDOW_SECONDS} (seconds).`;
export const ExpirePreviousInSeconds = z.number({ error: message }).int(message).min(0, message).max(MAX_WINDOW_SECONDS, message).optional().openapi({
  description:
    "How long the replaced key keeps working, in seconds (0–604,800; default 0: it fails on the next request). A rotation during a window ends that window at once.",
  example: 3600,
});

/** The optional body of a rotation route: `{ "expire_previous_in_seconds": N }`. */
export const RotationBody = z.object({ expire_previous_in_seconds: ExpirePreviousInSeconds }).openapi("RotationRequest");
export const optionalRotationBody = { required: false, content: { "application/json": { schema: RotationBody } } };

/** Which keys a rotation replaces: an org's keys of one type, or a partner's keys. */
export type KeyOwner = { org_id: string; key_type: "ck_live" | "sk_live" } | { partner_id: string };

const ownerSql = (o: KeyOwner) =>
  "org_id" in o
    ? { sql: "org_id = ? AND key_type = ?", binds: [o.org_id, o.key_type] }
    : { sql: "partner_id = ? AND key_type = 'kvqp'", binds: [o.partner_id] };

/**
 * The statements that retire the current keys of `owner` before a new one is inserted (in that order, in the
 * rotation's batch, each only when `where` holds): keys already in a window are revoked now; the others get
 * `expires_at = now + window`, or are revoked now when the window is 0.
 */
export function retireKeys(
  db: D1Database,
  owner: KeyOwner,
  nowMs: number,
  windowSeconds: number,
  where: SqlExpression = { sql: "1", binds: [] },
): D1PreparedStatement[] {
  const now = isoNow(nowMs);
  const o = ownerSql(owner);
  const endWindows = db
    .prepare(`UPDATE api_keys SET revoked_at = ? WHERE ${o.sql} AND revoked_at IS NULL AND expires_at IS NOT NULL AND ${where.sql}`)
    .bind(now, ...o.binds, ...where.binds);
  const retire =
    windowSeconds > 0
      ? db
          .prepare(`UPDATE api_keys SET expires_at = ? WHERE ${o.sql} AND revoked_at IS NULL AND expires_at IS NULL AND ${where.sql}`)
          .bind(isoNow(nowMs + windowSeconds * 1000), ...o.binds, ...where.binds)
      : db.prepare(`UPDATE api_keys SET revoked_at = ? WHERE ${o.sql} AND revoked_at IS NULL AND ${where.sql}`).bind(now, ...o.binds, ...where.binds);
  return [endWindows, retire];
}

/** A key row's failure at `now`, if any: a key past its window fails exactly as a revoked one. */
export function keyRowFailure(row: { revoked_at: string | null; expires_at: string | null }, now = isoNow()): "revoked" | null {
  if (row.revoked_at) return "revoked";
  if (row.expires_at !== null && row.expires_at <= now) return "revoked";
  return null;
}

export type KeyStatus = "active" | "expiring" | "revoked" | "expired";

export function keyStatus(row: { revoked_at: string | null; expires_at: string | null }, now = isoNow()): KeyStatus {
  if (row.revoked_at) return "revoked";
  if (row.expires_at === null) return "active";
  return row.expires_at > now ? "expiring" : "expired";
}
