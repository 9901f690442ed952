// Per-partner quotas: welcome emails a day (each provisioning and each resent invite sends one), and EMAIL_TAKEN
// answers an hour (each tells a partner that an address has an account here). Counted in partner_counters by a
// statement inside the batch of the change it counts: the row's CHECK (count <= cap) fails the statement past the
// cap, the batch rolls back, and the handler answers 429 with the seconds until the window ends.
import { ApiError } from "../../lib/http/errors";
import type { SqlExpression } from "../../lib/data/idempotency";

export const DEFAULT_PARTNER_DAILY_PROVISIONS = 1000;
export const EMAIL_TAKEN_PER_HOUR = 20;

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

export type Counter = "welcome_emails" | "email_taken";

/** PARTNER_DAILY_PROVISIONS ([vars]), a positive integer; anything else means the default. */
export function dailyProvisionCap(env: { PARTNER_DAILY_PROVISIONS?: string }): number {
  const n = Number(env.PARTNER_DAILY_PROVISIONS);
  return Number.isInteger(n) && n > 0 ? n : DEFAULT_PARTNER_DAILY_PROVISIONS;
}

const windowMs = (name: Counter) => (name === "welcome_emails" ? DAY_MS : HOUR_MS);
const windowStart = (name: Counter, nowMs: number) => new Date(nowMs - (nowMs % windowMs(name))).toISOString();

/** Adds one to the partner's counter of this window (only when `where` holds); fails past the cap. */
export function countStatement(db: D1Database, partnerId: string, name: Counter, cap: number, nowMs: number, where: SqlExpression = { sql: "1", binds: [] }) {
  return db
    .prepare(
      `INSERT INTO partner_counters (partner_id, name, window_start, count, cap) SELECT ?, ?, ?, 1, ? WHERE ${where.sql}
       ON CONFLICT (partner_id, name, window_start) DO UPDATE SET count = count + 1, cap = excluded.cap`,
    )
    .bind(partnerId, name, windowStart(name, nowMs), cap, ...where.binds);
}

export const isQuotaExceeded = (err: unknown) => /CHECK constraint failed: partner_quota/.test(err instanceof Error ? err.message : String(err));

export function quotaExceeded(name: Counter, cap: number, nowMs: number): ApiError {
  const retryAfter = Math.max(1, Math.ceil((Date.parse(windowStart(name, nowMs)) + windowMs(name) - nowMs) / 1000));
  const what = name === "welcome_emails" ? `${cap} provisioned organizations and invites per UTC day` : `${cap} taken-email answers per hour`;
  return new ApiError(429, "RATE_LIMITED", `At most ${what} per partner; retry later.`, undefined, { "Retry-After": String(retryAfter) });
}
