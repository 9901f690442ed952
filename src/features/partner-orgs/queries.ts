// SQL for partner organizations. Statements only; handlers batch them.

/**
 * The slug, allocated inside the INSERT: the base if free, else base-N with N one past the largest numeric suffix
 * in use. D1 runs each batch as one serialized transaction, so concurrent provisions cannot pick the same slug.
 */
const SLUG_SQL = `CASE WHEN NOT EXISTS (SELECT 1 FROM organizations WHERE slug = ?) THEN ?
  ELSE ? || '-' || (SELECT COALESCE(MAX(CAST(substr(slug, length(?) + 2) AS INTEGER)), 1) + 1
                      FROM organizations
                     WHERE slug GLOB ? || '-[0-9]*' AND length(slug) <= length(?) + 10
                       AND substr(slug, length(?) + 2) NOT GLOB '*[^0-9]*') END`;

export interface NewPartnerOrg {
  orgId: string;
  identifier: string;
  baseSlug: string;
  name: string;
  partnerId: string;
  externalId: string;
}

const USER_ID_BY_EMAIL = `(SELECT id FROM users WHERE lower(email) = lower(?))`;

/**
 * The owner, unless the partner already has this externalId: then the org insert after it fails on that, so a
 * duplicate externalId is reported (400) before a taken email (409), as the partner API documents.
 */
export const insertOwner = (db: D1Database, email: string, partnerId: string, externalId: string, now: string) =>
  db
    .prepare(
      `INSERT INTO users (email, created_at, updated_at) SELECT ?, ?, ?
        WHERE NOT EXISTS (SELECT 1 FROM organizations WHERE partner_id = ? AND external_id = ?)`,
    )
    .bind(email, now, now, partnerId, externalId);

export const insertPartnerOrg = (db: D1Database, o: NewPartnerOrg, ownerEmail: string, now: string) =>
  db
    .prepare(
      `INSERT INTO organizations (org_id, identifier, slug, name, domain, tier, allowed_origins, owner_user_id,
         partner_id, external_id, created_at, updated_at)
       VALUES (?, ?, ${SLUG_SQL}, ?, 'general', 'starter', '[]', ${USER_ID_BY_EMAIL}, ?, ?, ?, ?)`,
    )
    .bind(o.orgId, o.identifier, ...Array(7).fill(o.baseSlug), o.name, ownerEmail, o.partnerId, o.externalId, now, now);

export const countPartnerOrg = (db: D1Database, partnerId: string) =>
  db.prepare(`UPDATE partners SET org_count = org_count + 1 WHERE partner_id = ?`).bind(partnerId);

/** The welcome / set-password email, by ids only: the token is made when the email is sent. */
export const insertWelcomeEmail = (db: D1Database, outboxId: string, orgId: string, email: string, now: string) =>
  db
    .prepare(
      `INSERT INTO outbox (id, kind, payload, created_at, updated_at)
       VALUES (?, 'welcome_email', json_object('user_id', ${USER_ID_BY_EMAIL}, 'org_id', ?), ?, ?)`,
    )
    .bind(outboxId, email, orgId, now, now);

/** The stored result of a provisioning: 201 and the PartnerOrganization with keys null (what a replay returns). */
export const provisionedResult = (orgId: string, clientPrefix: string, serverPrefix: string) => ({
  select: `SELECT 201 AS status, json_object('userId', owner_user_id, 'organizationIdentifier', identifier, 'organizationSlug', slug,
          'clientKey', NULL, 'serverKey', NULL, 'partnerExternalId', external_id,
          'clientKeyPrefix', ?, 'serverKeyPrefix', ?, 'clientKeyLastUsedAt', NULL, 'serverKeyLastUsedAt', NULL) AS body
          FROM organizations WHERE org_id = ?`,
  binds: [clientPrefix, serverPrefix, orgId],
});

export const selectProvisioned = (db: D1Database, orgId: string) => db.prepare(`SELECT owner_user_id, slug FROM organizations WHERE org_id = ?`).bind(orgId);

export interface PartnerOrgRow {
  seq: number;
  org_id: string;
  owner_user_id: number | null;
  identifier: string;
  slug: string;
  external_id: string;
  client_prefix: string | null;
  server_prefix: string | null;
  client_last_used_at: string | null;
  server_last_used_at: string | null;
}

/** A column of the org's current (newest unrevoked) key of a type. */
const CURRENT_KEY = (type: string, column: string) =>
  `(SELECT ${column} FROM api_keys k WHERE k.org_id = o.org_id AND k.key_type = '${type}' AND k.revoked_at IS NULL
     ORDER BY k.id DESC LIMIT 1)`;

const SELECT_PARTNER_ORG = `SELECT o.seq, o.org_id, o.owner_user_id, o.identifier, o.slug, o.external_id,
    ${CURRENT_KEY("ck_live", "prefix")} AS client_prefix, ${CURRENT_KEY("sk_live", "prefix")} AS server_prefix,
    ${CURRENT_KEY("ck_live", "last_used_at")} AS client_last_used_at, ${CURRENT_KEY("sk_live", "last_used_at")} AS server_last_used_at
  FROM organizations o`;

type Reader = D1Database | D1DatabaseSession;

export const findByIdentifier = (db: Reader, partnerId: string, identifier: string) =>
  db.prepare(`${SELECT_PARTNER_ORG} WHERE o.partner_id = ? AND o.identifier = ?`).bind(partnerId, identifier).first<PartnerOrgRow>();

export const findByExternalId = (db: Reader, partnerId: string, externalId: string) =>
  db.prepare(`${SELECT_PARTNER_ORG} WHERE o.partner_id = ? AND o.external_id = ?`).bind(partnerId, externalId).first<PartnerOrgRow>();

/** One page, newest first, by keyset on seq: the same index range scan at any depth. Plus the total, in one batch. */
export function listPage(db: Reader, partnerId: string, opts: { externalId?: string; beforeSeq?: number; limit: number }) {
  const where = ["o.partner_id = ?"];
  const binds: unknown[] = [partnerId];
  if (opts.externalId !== undefined) where.push("o.external_id = ?"), binds.push(opts.externalId);
  if (opts.beforeSeq !== undefined) where.push("o.seq < ?"), binds.push(opts.beforeSeq);
  const page = db.prepare(`${SELECT_PARTNER_ORG} WHERE ${where.join(" AND ")} ORDER BY o.seq DESC LIMIT ?`).bind(...binds, opts.limit + 1);
  const total =
    opts.externalId === undefined
      ? db.prepare(`SELECT org_count AS n FROM partners WHERE partner_id = ?`).bind(partnerId)
      : db.prepare(`SELECT COUNT(*) AS n FROM organizations WHERE partner_id = ? AND external_id = ?`).bind(partnerId, opts.externalId);
  return db.batch<unknown>([page, total]) as Promise<[D1Result<PartnerOrgRow>, D1Result<{ n: number }>]>;
}
