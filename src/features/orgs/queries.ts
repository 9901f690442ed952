// SQL shared by every feature that mints an org key or changes an org.
import type { MintedKey } from "../../lib/keys/keys";
import type { SqlExpression } from "../../lib/data/idempotency";

/**
 * Stores an org key's hash. With `where`, the row is written only when that SQL condition holds in the batch
 * (e.g. "this request made the state change", or `changes() = 1` right after revoking the old key).
 */
export function insertOrgKey(
  db: D1Database,
  orgId: string,
  key: MintedKey,
  hash: string,
  pepperId: string,
  now: string,
  where: SqlExpression = { sql: "1", binds: [] },
): D1PreparedStatement {
  return db
    .prepare(`INSERT INTO api_keys (key_hash, pepper_id, key_type, prefix, org_id, created_at) SELECT ?, ?, ?, ?, ?, ? WHERE ${where.sql}`)
    .bind(hash, pepperId, key.type, key.prefix, orgId, now, ...where.binds);
}

/**
 * "This request changed the org": a batch's first statement sets organizations.last_request_id to the request id, and
 * its later statements test it, so they apply only when that change happened (concurrent requests cannot double-apply).
 */
export const orgChangedBy = (orgId: string, requestId: string): SqlExpression => ({
  sql: "EXISTS (SELECT 1 FROM organizations WHERE org_id = ? AND last_request_id = ?)",
  binds: [orgId, requestId],
});
