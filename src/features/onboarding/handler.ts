import type { RouteHandler } from "@hono/zod-openapi";
import type { Handler } from "hono";
import { auditStatement } from "../../lib/audit";
import { type AppEnv, envelope } from "../../lib/context";
import { ApiError } from "../../lib/errors";
import { ulid } from "../../lib/ids";
import { clientIp } from "../../lib/rate-limit";
import { isoNow } from "../../lib/time";
import { findByIdentifier } from "../partner-orgs/queries";
import { hashPassword, hashToken } from "./crypto";
import { enqueueOutbox } from "./outbox-queue";
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
  ]);
  if (consumed.meta.changes !== 1) throw new ApiError(410, "TOKEN_USED", "This link has already been used."); // lost a race
  return c.json({ password_set: true as const, ...envelope(c) }, 200);
};

export const resendInvite: RouteHandler<typeof resendInviteRoute, AppEnv> = async (c) => {
  const { partner_id: partnerId } = c.get("partner");
  const db = c.env.DB;
  const org = await findByIdentifier(db, partnerId, c.req.valid("param").identifier.toLowerCase());
  if (!org || org.owner_user_id === null) throw new ApiError(404, "NOT_FOUND", "No such organization.");
  const now = isoNow();
  const outboxId = ulid();
  const hasNoPassword = { sql: "EXISTS (SELECT 1 FROM users WHERE id = ? AND password_hash IS NULL)", binds: [org.owner_user_id] };
  const [, queued] = await db.batch([
    // The old link dies now, not when the new email goes out.
    db.prepare(`UPDATE password_tokens SET used_at = ? WHERE user_id = ? AND used_at IS NULL AND ${hasNoPassword.sql}`).bind(now, org.owner_user_id, ...hasNoPassword.binds),
    db
      .prepare(`INSERT INTO outbox (id, kind, payload, created_at, updated_at) SELECT ?, 'welcome_email', json_object('user_id', CAST(? AS INTEGER), 'org_id', ?), ?, ? WHERE ${hasNoPassword.sql}`)
      .bind(outboxId, org.owner_user_id, org.org_id, now, now, ...hasNoPassword.binds),
    auditStatement(db, { event_type: "INVITE_RESENT", actor: `partner:${partnerId}`, org_id: org.org_id, request_id: c.get("requestId") }, now, hasNoPassword),
  ]);
  if (queued.meta.changes !== 1) throw new ApiError(409, "PASSWORD_ALREADY_SET", "The owner has already set a password.");
  c.executionCtx.waitUntil(enqueueOutbox(c.env.OUTBOX_QUEUE, [outboxId]));
  return c.json({ organizationIdentifier: org.identifier, userId: org.owner_user_id, inviteQueued: true as const }, 202);
};

const securityHeaders = { "Content-Security-Policy": PAGE_CSP, "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store" };

export const page: Handler<AppEnv> = (c) => c.html(PAGE_HTML, 200, { ...securityHeaders, "X-Frame-Options": "DENY" });
export const pageScript: Handler<AppEnv> = (c) => c.body(PAGE_JS, 200, { ...securityHeaders, "Content-Type": "text/javascript; charset=utf-8" });
export const pageStyles: Handler<AppEnv> = (c) => c.body(PAGE_CSS, 200, { ...securityHeaders, "Content-Type": "text/css; charset=utf-8" });
