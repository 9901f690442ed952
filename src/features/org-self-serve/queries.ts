// SQL for the org's own key changes. Statements only; the handlers batch them.
import { type SqlExpression, type SqlResult, sqlErrorBody, sqlText } from "../../lib/data/idempotency";
import { keyRetiring } from "../../lib/auth/org-key-auth";
import { unauthorized } from "../../lib/http/errors";
import type { KeyType } from "../../lib/keys/keys";

/**
 * The batch's first statement: marks the org with this request id only while the calling key still controls it:
 * not revoked and not in an overlap window (and the org active). Every later statement tests the mark, so a request
 * whose key was revoked or rotated by a concurrent request changes nothing. A key with no window is always the
 * newest of its type (a rotation puts the old key in a window before it inserts the new one), so this is also what
 * makes sure no action retires a key newer than its caller's.
 */
export const markIfCallerControls = (db: D1Database, orgId: string, callerKeyId: number, requestId: string) =>
  db
    .prepare(
      `UPDATE organizations SET last_request_id = ?
        WHERE org_id = ? AND status = 'active'
          AND EXISTS (SELECT 1 FROM api_keys WHERE id = ? AND revoked_at IS NULL AND expires_at IS NULL)`,
    )
    .bind(requestId, orgId, callerKeyId);

/**
 * The answer of a self-serve change, decided at the end of its batch: `success` when the mark is this request's,
 * else 403 KEY_RETIRING when the caller's key went into a window meanwhile, else the uniform 401.
 */
export const callerOutcome = (mine: SqlExpression, callerKeyId: number, success: SqlExpression): SqlResult => ({
  select: `SELECT status, CASE status WHEN 200 THEN ${success.sql}
        WHEN 403 THEN ${sqlErrorBody("KEY_RETIRING", sqlText(keyRetiring().message))}
        ELSE ${sqlErrorBody("UNAUTHORIZED", sqlText(unauthorized().message))} END AS body
      FROM (SELECT CASE WHEN ${mine.sql} THEN 200
                        WHEN EXISTS (SELECT 1 FROM api_keys WHERE id = ? AND revoked_at IS NULL AND expires_at IS NOT NULL) THEN 403
                        ELSE 401 END AS status)`,
  binds: [...success.binds, ...mine.binds, callerKeyId],
});

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
export const listOrgKeysStatement = (db: D1Database, orgId: string, limit: number) =>
  db
    .prepare(`SELECT key_type, prefix, created_at, expires_at, revoked_at, last_used_at FROM api_keys WHERE org_id = ? ORDER BY id DESC LIMIT ?`)
    .bind(orgId, limit);

export const listOrgKeys = (db: D1Database, orgId: string, limit: number) => listOrgKeysStatement(db, orgId, limit).all<OrgKeyListRow>();
