// Console sessions: a random id in a __Host- cookie (HttpOnly, Secure, SameSite=Lax, with hono/csrf on every POST),
// stored in D1 only as its SHA-256. Idle expiry 30 minutes, absolute 12 hours; sign-out ends it; a password set or
// reset ends every session of that user. Checking a session and touching its idle clock is one D1 round trip.
import type { MiddlewareHandler } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { AppContext, AppEnv } from "../../lib/http/context";
import { sha256Hex } from "../../lib/keys/keys";
import { isoNow } from "../../lib/util/time";
import { toBase64Url } from "../../lib/util/bytes";

export const SESSION_COOKIE = "console"; // sent as __Host-console
export const SESSION_IDLE_MS = 30 * 60_000;
export const SESSION_ABSOLUTE_MS = 12 * 60 * 60_000;

export interface ConsoleUser {
  user_id: number;
  email: string;
  session_hash: string;
}

/** Starts a session for `userId`: its row (a statement, for the sign-in's batch) and the cookie. */
export async function startSession(c: AppContext, userId: number, nowMs = Date.now()) {
  const id = toBase64Url(crypto.getRandomValues(new Uint8Array(32)));
  const hash = await sha256Hex(id);
  setCookie(c, SESSION_COOKIE, id, { prefix: "host", httpOnly: true, secure: true, sameSite: "Lax", path: "/", maxAge: SESSION_ABSOLUTE_MS / 1000 });
  return c.env.DB.prepare(`INSERT INTO console_sessions (id_hash, user_id, created_at, last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?)`).bind(
    hash,
    userId,
    isoNow(nowMs),
    isoNow(nowMs),
    isoNow(nowMs + SESSION_ABSOLUTE_MS),
  );
}

/** The signed-in owner, or null: the session must be live (not ended, not past either expiry); it is touched. */
export async function currentUser(c: AppContext, nowMs = Date.now()): Promise<ConsoleUser | null> {
  const id = getCookie(c, SESSION_COOKIE, "host");
  if (!id || id.length > 100) return null;
  const hash = await sha256Hex(id);
  const row = await c.env.DB.prepare(
    `UPDATE console_sessions SET last_seen_at = ?1
      WHERE id_hash = ?2 AND ended_at IS NULL AND expires_at > ?1 AND last_seen_at > ?3
      RETURNING user_id, (SELECT email FROM users WHERE id = user_id) AS email`,
  )
    .bind(isoNow(nowMs), hash, isoNow(nowMs - SESSION_IDLE_MS))
    .first<{ user_id: number; email: string }>();
  return row ? { ...row, session_hash: hash } : null;
}

/** Pages that need an owner: signed out (or expired) → the sign-in page. */
export const requireUser: MiddlewareHandler<AppEnv & { Variables: { user: ConsoleUser } }> = async (c, next) => {
  const user = await currentUser(c as unknown as AppContext);
  if (!user) {
    deleteCookie(c, SESSION_COOKIE, { prefix: "host", secure: true, path: "/" });
    return c.redirect("/console/sign-in", 303);
  }
  c.set("user", user);
  await next();
};

export const endSessionStatement = (db: D1Database, hash: string, now: string) =>
  db.prepare(`UPDATE console_sessions SET ended_at = ? WHERE id_hash = ? AND ended_at IS NULL`).bind(now, hash);

/** Ends every session of a user (a password set or reset), when `where` holds in the batch. */
export const endUserSessionsStatement = (db: D1Database, userId: number, now: string, where: { sql: string; binds: unknown[] }) =>
  db.prepare(`UPDATE console_sessions SET ended_at = ? WHERE user_id = ? AND ended_at IS NULL AND ${where.sql}`).bind(now, userId, ...where.binds);

export const clearSessionCookie = (c: AppContext) => deleteCookie(c, SESSION_COOKIE, { prefix: "host", secure: true, path: "/" });
