// SQL of the console's pages: what an owner may see of the orgs they own. Every query names the owner, so another
// owner's org is simply not found.
import type { OrgStatus } from "../../lib/keys/org-keys";
import { usagePeriod } from "../../lib/util/usage-period";

export interface OwnedOrg {
  org_id: string;
  name: string;
  tier: "starter" | "standard" | "enterprise";
  status: OrgStatus;
  allowed_origins: string;
  partner_id: string | null;
  status_changed_at: string | null;
  used: number;
}

export const userByEmail = (db: D1Database, email: string) =>
  db.prepare(`SELECT id, password_hash FROM users WHERE lower(email) = lower(?)`).bind(email.trim()).first<{ id: number; password_hash: string | null }>();

export const ownedOrgs = (db: D1Database, userId: number) =>
  db
    .prepare(`SELECT org_id, name, tier, status FROM organizations WHERE owner_user_id = ? ORDER BY seq DESC LIMIT 200`)
    .bind(userId)
    .all<Pick<OwnedOrg, "org_id" | "name" | "tier" | "status">>();

/** One owned org with this period's usage (no row when the user does not own it). */
export const ownedOrgStatement = (db: D1Database, userId: number, orgId: string) =>
  db
    .prepare(
      `SELECT o.org_id, o.name, o.tier, o.status, o.allowed_origins, o.partner_id, o.status_changed_at,
              (SELECT COALESCE(SUM(u.count), 0) FROM usage_daily u WHERE u.org_id = o.org_id AND u.day >= ?) AS used
         FROM organizations o WHERE o.org_id = ? AND o.owner_user_id = ?`,
    )
    .bind(usagePeriod().startDay, orgId, userId);

export const ownedOrg = (db: D1Database, userId: number, orgId: string) => ownedOrgStatement(db, userId, orgId).first<OwnedOrg>();

export interface AuditRow {
  id: number;
  event_type: string;
  actor: string;
  key_prefix: string | null;
  detail: string | null;
  count: number;
  created_at: string;
}

/** A page of the org's audit log, newest first, before an id (keyset paging). */
export const auditPage = (db: D1Database, orgId: string, opts: { eventType?: string; beforeId?: number; limit: number }) => {
  const where = ["org_id = ?"];
  const binds: unknown[] = [orgId];
  if (opts.eventType) where.push("event_type = ?"), binds.push(opts.eventType);
  if (opts.beforeId) where.push("id < ?"), binds.push(opts.beforeId);
  return db
    .prepare(`SELECT id, event_type, actor, key_prefix, detail, count, created_at FROM audit_log WHERE ${where.join(" AND ")} ORDER BY id DESC LIMIT ?`)
    .bind(...binds, opts.limit + 1)
    .all<AuditRow>();
};

/**
 * The console's batch mark: the org is active and this user owns it. Later statements test it (orgChangedBy), so
 * an owner's action on an org that was suspended meanwhile changes nothing.
 */
export const markIfOwnerControls = (db: D1Database, orgId: string, userId: number, requestId: string, extra = "") =>
  db
    .prepare(`UPDATE organizations SET last_request_id = ? WHERE org_id = ? AND status = 'active' AND owner_user_id = ? ${extra}`)
    .bind(requestId, orgId, userId);

/** For a claim: the org has no live key of either type (a first pair, or after billing restored it keyless). */
export const NO_LIVE_KEYS = `AND NOT EXISTS (SELECT 1 FROM api_keys k WHERE k.org_id = organizations.org_id AND k.revoked_at IS NULL
  AND (k.expires_at IS NULL OR k.expires_at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))`;
