// SQL for creating an organization with its first key. Statements only: the handler batches them.

export interface NewOrg {
  org_id: string;
  identifier: string;
  slug: string;
  name: string;
  domain: string;
  tier: string;
  allowed_origins: string[];
  owner_user_id?: number | null;
  partner_id?: string | null;
  external_id?: string | null;
}

export function insertOrg(db: D1Database, org: NewOrg, now: string): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO organizations (org_id, identifier, slug, name, domain, tier, allowed_origins,
         owner_user_id, partner_id, external_id, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .bind(
      org.org_id,
      org.identifier,
      org.slug,
      org.name,
      org.domain,
      org.tier,
      JSON.stringify(org.allowed_origins),
      org.owner_user_id ?? null,
      org.partner_id ?? null,
      org.external_id ?? null,
      now,
      now,
    );
}
