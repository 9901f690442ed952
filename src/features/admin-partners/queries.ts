// SQL for partners and their keys. Statements only; handlers batch them.

export const insertPartner = (db: D1Database, partnerId: string, name: string, now: string) =>
  db.prepare(`INSERT INTO partners (partner_id, name, created_at, updated_at) VALUES (?, ?, ?, ?)`).bind(partnerId, name, now, now);

/** The new key, only if the partner exists and is active. */
export const insertPartnerKey = (db: D1Database, partnerId: string, hash: string, pepperId: string, prefix: string, now: string) =>
  db
    .prepare(
      `INSERT INTO api_keys (key_hash, pepper_id, key_type, prefix, partner_id, created_at)
       SELECT ?, ?, 'kvqp', ?, partner_id, ? FROM partners WHERE partner_id = ? AND active = 1`,
    )
    .bind(hash, pepperId, prefix, now, partnerId);

export const deactivatePartner = (db: D1Database, partnerId: string, now: string) =>
  db.prepare(`UPDATE partners SET active = 0, updated_at = ? WHERE partner_id = ? AND active = 1`).bind(now, partnerId);

export const activePartnerExists = (partnerId: string) => ({
  sql: "EXISTS (SELECT 1 FROM partners WHERE partner_id = ? AND active = 1)",
  binds: [partnerId],
});

export interface PartnerSummaryRow {
  partner_id: string;
  name: string;
  active: number;
  prefix: string | null;
  org_count: number;
  created_at: string;
}

export const listPartners = (db: D1Database) =>
  db
    .prepare(
      `SELECT p.partner_id, p.name, p.active, p.org_count, p.created_at,
              (SELECT prefix FROM api_keys k WHERE k.partner_id = p.partner_id AND k.revoked_at IS NULL
                ORDER BY k.id DESC LIMIT 1) AS prefix
         FROM partners p ORDER BY p.created_at, p.partner_id`,
    )
    .all<PartnerSummaryRow>();
