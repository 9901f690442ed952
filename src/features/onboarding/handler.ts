import type { RouteHandler } from "@hono/zod-openapi";
import { deliverEventsAfterResponse, ownerActivatedEvents } from "../../lib/data/events";
import type { Handler } from "hono";
import { auditStatement } from "../../lib/data/audit";
import { type AppEnv, envelope } from "../../lib/http/context";
import { ApiError } from "../../lib/http/errors";
import { ulid } from "../../lib/util/ids";
import { clientIp } from "../../lib/http/rate-limit";
import { isoNow } from "../../lib/util/time";
import { findByIdentifier } from "../partner-orgs/queries";
import { hashPassword, hashToken } from "./crypto";
import { countStatement, dailyProvisionCap, isQuotaExceeded, quotaExceeded } from "../partner-orgs/quota";
import { enqueueOutbox } from "./outbox-queue";
import { endUserSessionsStatement } from "../console/session";
import { PAGE_CSP, PAGE_CSS, PAGE_HTML, PAGE_JS } from "./page";
import type { checkTokenRoute, resendInviteRoute, setPasswordRoute } from "./route";

interface TokenRow {
  user_id: number;
  expires_at: string;
  used_at: string | null;
}

/** The token's row if it can be used now; else the error the page shows. */
async function usableToken(db: D1Database, tokenHash: string): Promise<TokenRow> {
  const row = await db.prepare(`SELECT user_id, expires_at, used_at FROM password_tokens WHERE token_hash = ?`).bind(tokenHash).first<TokenRow>();
  if (!row) throw new ApiError(400, "TOKEN_INVALID", "This link is not valid.");
  if (row.used_at) throw new ApiError(410, "TOKEN_USED", "This link has already been used.");
  if (row.expires_at <= isoNow()) throw new ApiError(410, "TOKEN_EXPIRED", "This link has expired.");
  return row;
}

export const checkToken: RouteHandler<typeof checkTokenRoute, AppEnv> = async (c) => {
  const row = await usableToken(c.env.DB, await hashToken(c.req.valid("json").token));
  return c.json({ valid: true as const, expires_at: row.expires_at, ...envelope(c) }, 200);
};

export const setPassword: RouteHandler<typeof setPasswordRoute, AppEnv> = async (c) => {
  const { token, password } = c.req.valid("json");
  const db = c.env.DB;
  const tokenHash = await hashToken(token);
  const row = await usableToken(db, tokenHash); // refuse bad links before spending PBKDF2 time
  const passwordHash = await hashPassword(password);
  const now = isoNow();
  const requestId = c.get("requestId");
  // Consume the token and set the password together; the second statement applies only if this request consumed it.
  const consumedByUs = { sql: "EXISTS (SELECT 1 FROM password_tokens WHERE token_hash = ? AND used_request_id = ?)", binds: [tokenHash, requestId] };
  const [consumed] = await db.batch([
    db
      .prepare(`UPDATE password_tokens SET used_at = ?, used_request_id = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?`)
      .bind(now, requestId, tokenHash, now),
    db
      .prepare(`UPDATE users SET password_hash = ?, password_set_at = ?, updated_at = ? WHERE id = ? AND ${consumedByUs.sql}`)
      .bind(passwordHash, now, now, row.user_id, ...consumedByUs.binds),
    db
      .prepare(
        `INSERT INTO audit_log (event_type, actor, org_id, request_id, ip, detail, created_at)
         SELECT 'PASSWORD_SET', ?, (SELECT org_id FROM organizations WHERE owner_user_id = ? LIMIT 1), ?, ?, NULL, ?
          WHERE ${consumedByUs.sql}`,
      )
      .bind(`user:${row.user_id}`, row.user_id, requestId, clientIp(c), now, ...consumedByUs.binds),
    // A password set or reset ends every console session of the user (a stolen session dies with the old password).
    endUserSessionsStatement(db, row.user_id, now, consumedByUs),
    // The owner's first password (from the invite, not a reset): their orgs' partners and the orgs hear of it.
    ownerActivatedEvents(db, row.user_id, now, {
      sql: `${consumedByUs.sql} AND EXISTS (SELECT 1 FROM password_tokens WHERE token_hash = ? AND purpose = 'invite')`,
      binds: [...consumedByUs.binds, tokenHash],
    }),
  ]);
  if (consumed.meta.changes !== 1) throw new ApiError(410, "TOKEN_USED", "This link has already been used."); // lost a race
  deliverEventsAfterResponse(c);
  return c.json({ password_set: true as const, ...envelope(c) }, 200);
};

/** Resend limits per user: one per RESEND_SPACING_MS, RESEND_PER_DAY per rolling 24 hours. */
export const RESEND_SPACING_MS = 10 * 60_000;
export const RESEND_PER_DAY = 5;
const DAY_MS = 86_400_000;

export const resendInvite: RouteHandler<typeof resendInviteRoute, AppEnv> = async (c) => {
  const { partner_id: partnerId } = c.get("partner");
  const db = c.env.DB;
  const org = await findByIdentifier(db, partnerId, c.req.valid("param").identifier.toLowerCase());
  if (!org || org.owner_user_id === null) throw new ApiError(404, "NOT_FOUND", "No such organization.");
  const nowMs = Date.now();
  const now = isoNow(nowMs);
  const requestId = c.get("requestId");
  const userId = org.owner_user_id;
  const outboxId = ulid();
  const hasNoPassword = `EXISTS (SELECT 1 FROM users WHERE id = ? AND password_hash IS NULL)`;
  const ours = { sql: "EXISTS (SELECT 1 FROM invite_resends WHERE user_id = ? AND request_id = ?)", binds: [userId, requestId] };
  const dailyCap = dailyProvisionCap(c.env);
  let batch: D1Result[];
  try {
    batch = await db.batch([
      // The limits, checked and recorded in the batch: concurrent resends cannot both pass.
      db
        .prepare(
          `INSERT INTO invite_resends (user_id, sent_at, request_id) SELECT ?, ?, ?
          WHERE ${hasNoPassword}
            AND NOT EXISTS (SELECT 1 FROM invite_resends WHERE user_id = ? AND sent_at > ?)
            AND (SELECT COUNT(*) FROM invite_resends WHERE user_id = ? AND sent_at > ?) < ?`,
        )
        .bind(userId, now, requestId, userId, userId, isoNow(nowMs - RESEND_SPACING_MS), userId, isoNow(nowMs - DAY_MS), RESEND_PER_DAY),
      // One of the partner's daily welcome emails (fails past the quota: the whole batch rolls back, 429).
      countStatement(db, partnerId, "welcome_emails", dailyCap, nowMs, ours),
      // The old link dies now, not when the new email goes out.
      db.prepare(`UPDATE password_tokens SET used_at = ? WHERE user_id = ? AND used_at IS NULL AND ${ours.sql}`).bind(now, userId, ...ours.binds),
      db
        .prepare(
          `INSERT INTO outbox (id, kind, payload, created_at, updated_at) SELECT ?, 'welcome_email', json_object('user_id', CAST(? AS INTEGER), 'org_id', ?), ?, ? WHERE ${ours.sql}`,
        )
        .bind(outboxId, userId, org.org_id, now, now, ...ours.binds),
      auditStatement(db, { event_type: "INVITE_RESENT", actor: `partner:${partnerId}`, org_id: org.org_id, request_id: requestId }, now, ours),
      db
        .prepare(
          `SELECT ${hasNoPassword} AS no_password,
                (SELECT MAX(sent_at) FROM invite_resends WHERE user_id = ? AND request_id <> ?) AS last_at,
                (SELECT sent_at FROM invite_resends WHERE user_id = ? AND sent_at > ? ORDER BY sent_at DESC LIMIT 1 OFFSET ?) AS day_oldest_at`,
        )
        .bind(userId, userId, requestId, userId, isoNow(nowMs - DAY_MS), RESEND_PER_DAY - 1),
    ]);
  } catch (err) {
    if (isQuotaExceeded(err)) throw quotaExceeded("welcome_emails", dailyCap, nowMs);
    throw err;
  }
  const [allowed, , , , , state] = batch;
  if (allowed.meta.changes !== 1) {
    const s = state.results[0] as { no_password: number; last_at: string | null; day_oldest_at: string | null };
    if (!s.no_password) throw new ApiError(409, "PASSWORD_ALREADY_SET", "The owner has already set a password.");
    // Wait for whichever limit frees up last: the 10-minute spacing, or the oldest of the day's five.
    const freeAt = Math.max(s.last_at ? Date.parse(s.last_at) + RESEND_SPACING_MS : 0, s.day_oldest_at ? Date.parse(s.day_oldest_at) + DAY_MS : 0);
    const retryAfter = String(Math.max(1, Math.ceil((freeAt - nowMs) / 1000)));
    throw new ApiError(
      429,
      "RATE_LIMITED",
      `At most one invite per ${RESEND_SPACING_MS / 60_000} minutes and ${RESEND_PER_DAY} per day; retry later.`,
      undefined,
      { "Retry-After": retryAfter },
    );
  }
  c.executionCtx.waitUntil(enqueueOutbox(c.env.OUTBOX_QUEUE, [outboxId]));
  return c.json({ organizationIdentifier: org.identifier, userId, inviteQueued: true as const }, 202);
};

const securityHeaders = {
  "Content-Security-Policy": PAGE_CSP,
  "Referrer-Policy": "no-referrer",
  "X-Content-Type-Options": "nosniff",
  "Cache-Control": "no-store",
};

export const page: Handler<AppEnv> = (c) => c.html(PAGE_HTML, 200, { ...securityHeaders, "X-Frame-Options": "DENY" });
export const pageScript: Handler<AppEnv> = (c) => c.body(PAGE_JS, 200, { ...securityHeaders, "Content-Type": "text/javascript; charset=utf-8" });
export const pageStyles: Handler<AppEnv> = (c) => c.body(PAGE_CSS, 200, { ...securityHeaders, "Content-Type": "text/css; charset=utf-8" });
