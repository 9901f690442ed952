// Audit rows: every auth failure and every change. Never a secret: keys appear as type prefix + 8 chars.
import type { AppContext } from "../http/context";
import { isoNow } from "../util/time";

export const AUDIT_EVENT_TYPES = [
  "ORG_CREATED",
  "AUTH_FAIL_MASTER_KEY",
  "AUTH_FAIL_PARTNER_KEY",
  "AUTH_FAIL_ORG_KEY",
  "AUTH_FAIL_RATE_LIMITED_IP",
  "AUTH_FAIL_RATE_LIMITED_KEY",
  "PARTNER_CREATED",
  "PARTNER_KEY_ROTATED",
  "PARTNER_DEACTIVATED",
  "ORG_PROVISIONED",
  "USER_CREATED",
  "KEY_ROTATED",
  "ADMIN_BILLING_SUSPEND",
  "ADMIN_ORG_SUSPEND",
  "ADMIN_ORG_REACTIVATE",
  "ADMIN_ORG_FORCE_ROTATE",
  "ADMIN_ORG_FORCE_REVOKE",
  "KEY_REVOKED",
  "WELCOME_EMAIL_SENT",
  "WELCOME_EMAIL_FAILED",
  "INVITE_RESENT",
  "PASSWORD_SET",
  "PROVISION_EMAIL_TAKEN",
  "PARTNER_QUOTA_EXCEEDED",
  "KEY_REFUSED_RETIRING",
  "CONSOLE_SIGNED_IN",
  "CONSOLE_SIGN_IN_FAILED",
  "CONSOLE_SIGNED_OUT",
  "PASSWORD_RESET_REQUESTED",
  "KEYS_CREATED",
  "KEY_EXPOSED",
  "CLIENT_KEY_REPORTED",
  "AUTH_FAIL_GITHUB_SIGNATURE",
] as const;
export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[number];

export interface AuditEvent {
  event_type: AuditEventType;
  actor: string;
  request_id: string;
  org_id?: string | null;
  key_prefix?: string | null;
  ip?: string | null;
  detail?: string | null;
}

/**
 * A statement to put in the batch of the change it records. With `where`, the row is written only when that
 * SQL condition holds in the batch (e.g. `changes() = 1` right after the UPDATE it records).
 */
export function auditStatement(
  db: D1Database,
  e: AuditEvent,
  now = isoNow(),
  where: { sql: string; binds: unknown[] } = { sql: "1", binds: [] },
): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO audit_log (event_type, actor, org_id, key_prefix, request_id, ip, detail, created_at)
       SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE ${where.sql}`,
    )
    .bind(...auditValues(e), now, ...where.binds);
}

/**
 * Control and bidi/format characters (C0, C1, U+200E…, U+202A…, U+2066…) written as visible escapes (`\x1b`,
 * `\u202e`): a path or header copied into an audit row can then neither forge lines nor reorder text in a viewer.
 */
export const escapeControls = (s: string) =>
  s.replace(/[\p{Cc}\p{Cf}]/gu, (ch) => {
    const code = ch.codePointAt(0)!;
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });

const text = (v: string | null | undefined) => (v == null ? null : escapeControls(v));

const auditValues = (e: AuditEvent) => [e.event_type, text(e.actor), text(e.org_id), text(e.key_prefix), e.request_id, text(e.ip), text(e.detail)];

// ---- Aggregated failures -------------------------------------------------------------------------------------
// Auth failures and rate-limit refusals are what an attacker can produce at will. They are counted into one row per
// (event type, subject, minute): the first in an isolate is written before its 401/429 is sent (so it can be found
// by its request id), later ones in the same minute are added up in memory and written by one upsert per
// FAILURE_FLUSH_MS. A flood costs about one D1 write per subject per flush per isolate, not one per request.

export const FAILURE_FLUSH_MS = 2_000;
const MAX_PENDING = 10_000;

interface PendingFailure {
  event: AuditEvent;
  createdAt: string;
  count: number;
  scheduled: boolean;
}

const pendingFailures = new Map<string, PendingFailure>();
const OVERFLOW_SUBJECT = "*";

/** How many aggregated failures this isolate holds in memory (bounded by MAX_PENDING plus one per event type). */
export const pendingFailureCount = () => pendingFailures.size;

const upsertFailure = (db: D1Database, key: string, e: AuditEvent, createdAt: string, count: number) =>
  db
    .prepare(
      `INSERT INTO audit_log (event_type, actor, org_id, key_prefix, request_id, ip, detail, created_at, count, aggregate_key)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (aggregate_key) WHERE aggregate_key IS NOT NULL DO UPDATE SET count = count + excluded.count`,
    )
    .bind(...auditValues(e), createdAt, count, key)
    .run();

/**
 * Records a failure of `subject` (who or what failed: a client IP, a key, an IP and a scope…). Each row keeps the
 * first failure's request id and detail, and counts every failure of its minute.
 */
export async function recordFailure(
  db: D1Database,
  defer: (p: Promise<unknown>) => void,
  e: AuditEvent,
  subject: string,
  now = Date.now(),
  maxPending = MAX_PENDING,
) {
  const minute = isoNow(now).slice(0, 16);
  let key = `${e.event_type}|${minute}|${subject}`;
  if (!pendingFailures.has(key) && pendingFailures.size >= maxPending) {
    for (const k of pendingFailures.keys()) if (!k.includes(`|${minute}|`)) pendingFailures.delete(k);
    // Still full within this minute (a flood of distinct subjects): count the rest into one row per event type,
    // so memory stays bounded and every failure is still counted.
    if (pendingFailures.size >= maxPending) {
      key = `${e.event_type}|${minute}|${OVERFLOW_SUBJECT}`;
      e = { ...e, org_id: null, key_prefix: null, ip: null, detail: "subject=many (the per-minute subject cap was reached)" };
    }
  }
  const pending = pendingFailures.get(key);
  if (pending) {
    pending.count++;
    if (!pending.scheduled) {
      pending.scheduled = true;
      defer(new Promise((resolve) => setTimeout(resolve, FAILURE_FLUSH_MS)).then(() => flushFailure(db, key)));
    }
    return;
  }
  pendingFailures.set(key, { event: e, createdAt: isoNow(now), count: 0, scheduled: false });
  await upsertFailure(db, key, e, isoNow(now), 1);
}

async function flushFailure(db: D1Database, key: string) {
  const pending = pendingFailures.get(key);
  if (!pending || pending.count === 0) return;
  const count = pending.count;
  pending.count = 0;
  pending.scheduled = false;
  try {
    await upsertFailure(db, key, pending.event, pending.createdAt, count);
  } catch (err) {
    pending.count += count; // counted again by the next flush
    throw err;
  }
}

/**
 * One KEY_REVOKED row per org key of `keyType` revoked at `revokedAt` (by this batch), each naming its key, written
 * only when `where` holds. For revocations whose keys are only known inside the batch.
 */
export function auditRevokedKeysStatement(
  db: D1Database,
  e: { actor: string; org_id: string; request_id: string; detail?: string },
  keyType: string,
  revokedAt: string,
  where: { sql: string; binds: unknown[] },
): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO audit_log (event_type, actor, org_id, key_prefix, request_id, ip, detail, created_at)
       SELECT 'KEY_REVOKED', ?, org_id, key_type || '_' || prefix, ?, NULL, ?, ?
         FROM api_keys WHERE org_id = ? AND key_type = ? AND revoked_at = ? AND ${where.sql}`,
    )
    .bind(text(e.actor), e.request_id, text(e.detail), revokedAt, e.org_id, keyType, revokedAt, ...where.binds);
}

/** recordFailure for a request: the rest of the count is flushed with waitUntil. */
export const auditFailure = (c: AppContext, e: Omit<AuditEvent, "request_id">, subject: string) =>
  recordFailure(c.env.DB, (p) => c.executionCtx.waitUntil(p), { ...e, request_id: c.get("requestId") }, subject);
