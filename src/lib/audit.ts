// Audit rows: every auth failure and every change. Never a secret: keys appear as type prefix + 8 chars.
import { isoNow } from "./time";

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
    .bind(
      e.event_type,
      e.actor,
      e.org_id ?? null,
      e.key_prefix ?? null,
      e.request_id,
      e.ip ?? null,
      e.detail ?? null,
      now,
      ...where.binds,
    );
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
    .bind(e.actor, e.request_id, e.detail ?? null, revokedAt, e.org_id, keyType, revokedAt, ...where.binds);
}
