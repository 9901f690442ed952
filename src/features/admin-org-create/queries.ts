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
  /** The owner by email (a user inserted earlier in the same batch, or one that exists), if no owner_user_id. */
  owner_email?: string | null;
  partner_id?: string | null;
  external_id?: string | null;
}

export function insertOrg(db: D1Database, org: NewOrg, now: string): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO organizations (org_id, identifier, slug, name, domain, tier, allowed_origins,
         owner_user_id, partner_id, external_id, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, COALESCE(?, (SELECT id FROM users WHERE lower(email) = lower(?))), ?, ?, ?, ?)`,
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
      org.owner_email ?? null,
      org.partner_id ?? null,
      org.external_id ?? null,
      now,
      now,
    );
}

/** The owner's account: created, or the existing one (an owner of several orgs signs in once and picks one). */
export const upsertOwner = (db: D1Database, email: string, now: string) =>
  db.prepare(`INSERT INTO users (email, created_at, updated_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`).bind(email, now, now);
