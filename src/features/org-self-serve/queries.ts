// SQL for the org's own key changes. Statements only; the handlers batch them.
import type { SqlExpression } from "../../lib/data/idempotency";
import type { KeyType } from "../../lib/keys/keys";

/**
 * The batch's first statement: marks the org with this request id only while the calling key is still live (and
 * the org active). Every later statement tests the mark, so a request whose key was revoked or rotated by a
 * concurrent request changes nothing (it answers 401, as its key now would).
 */
export const markIfCallerLive = (db: D1Database, orgId: string, callerKeyId: number, requestId: string) =>
  db
    .prepare(
      `UPDATE organizations SET last_request_id = ?
        WHERE org_id = ? AND status = 'active'
          AND EXISTS (SELECT 1 FROM api_keys WHERE id = ? AND revoked_at IS NULL)`,
    )
    .bind(requestId, orgId, callerKeyId);


/** Revokes the org's live keys of one type (a key in a rotation window too: revoking takes no window); returns their prefixes. */
export const revokeKeysOfType = (db: D1Database, orgId: string, keyType: Exclude<KeyType, "kvqp">, now: string, where: SqlExpression) =>
  db
    .prepare(
      `UPDATE api_keys SET revoked_at = ? WHERE org_id = ? AND key_type = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)
          AND ${where.sql} RETURNING prefix`,
    )
    .bind(now, orgId, keyType, now, ...where.binds);

export interface OrgKeyListRow {
  key_type: "ck_live" | "sk_live";
  prefix: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}

/** The org's keys, newest first: no hash, no pepper id. */
export const listOrgKeys = (db: D1Database, orgId: string, limit: number) =>
  db
    .prepare(`SELECT key_type, prefix, created_at, expires_at, revoked_at, last_used_at FROM api_keys WHERE org_id = ? ORDER BY id DESC LIMIT ?`)
    .bind(orgId, limit)
    .all<OrgKeyListRow>();
