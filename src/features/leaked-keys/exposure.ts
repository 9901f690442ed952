// A leaked key, reported by GitHub secret scanning or by anyone who holds it: possession is proof enough to destroy
// it. Each token is checked by its checksum first (no HMAC, no D1 for noise); the rest are looked up in one D1
// batch (current and previous pepper). A live secret key (server or partner, in a window or not) is revoked in one
// batch with its KEY_EXPOSED audit row and, for an org key, the owner's email (outbox, never the key); the same
// report again changes nothing (each statement applies only after the one before it changed a row). A client key is
// publishable by design: audited (CLIENT_KEY_REPORTED), not revoked.
import { forgetPartner } from "../../lib/auth/partner-auth";
import { escapeControls } from "../../lib/data/audit";
import type { AppContext } from "../../lib/http/context";
import { hashBinds, keyHashes } from "../../lib/keys/key-lookup";
import { KEY_TYPES, type KeyType, parseKey } from "../../lib/keys/keys";
import { ulid } from "../../lib/util/ids";
import { isoNow } from "../../lib/util/time";
import { forgetOrg } from "../../verify/verify-key";
import { enqueueOutbox } from "../onboarding/outbox-queue";
import { deliverEventsAfterResponse, eventStatement, partnerEventStatement } from "../../lib/data/events";

export interface Report {
  token: string;
  /** Where it was found (GitHub's URL of the commit or file), if known. */
  url?: string;
}

interface FoundKey {
  id: number;
  key_type: KeyType;
  prefix: string;
  org_id: string | null;
  partner_id: string | null;
  owner_user_id: number | null;
}

/** Per report, whether the token is one of ours (a key we minted, live or not). */
export async function handleExposure(c: AppContext, reports: Report[], source: "github" | "report"): Promise<boolean[]> {
  const db = c.env.DB;
  const parsed = reports.map((r) => (typeof r.token === "string" && r.token.length <= 200 ? parseKey(r.token) : null));
  const candidates = reports.flatMap((r, i) => (parsed[i] ? [{ i, report: r }] : []));
  if (candidates.length === 0) return reports.map(() => false);

  const hashes = await Promise.all(candidates.map(({ report }) => keyHashes(c.env, report.token)));
  const found = await db.batch<FoundKey>(
    hashes.map((h) =>
      db
        .prepare(
          `SELECT k.id, k.key_type, k.prefix, k.org_id, k.partner_id, o.owner_user_id
             FROM api_keys k LEFT JOIN organizations o ON o.org_id = k.org_id
            WHERE k.key_hash IN (?, ?)`,
        )
        .bind(...hashBinds(h)),
    ),
  );
  const ours = reports.map(() => false);
  const now = isoNow();
  const requestId = c.get("requestId");
  const statements: D1PreparedStatement[] = [];
  const outboxIds: string[] = [];
  const touched = { orgs: new Set<string>(), partners: new Set<string>() };
  const seen = new Set<number>();
  candidates.forEach(({ i, report }, n) => {
    const key = found[n].results[0];
    if (!key) return;
    ours[i] = true;
    if (seen.has(key.id)) return; // the same key twice in one report
    seen.add(key.id);
    const keyPrefix = KEY_TYPES[key.key_type] + key.prefix;
    const detail = escapeControls(`source=${source}${report.url ? ` url=${String(report.url).slice(0, 500)}` : ""}`);
    const audit = (event: string, where: string) =>
      db
        .prepare(
          `INSERT INTO audit_log (event_type, actor, org_id, key_prefix, request_id, ip, detail, created_at) SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE ${where}`,
        )
        .bind(event, `system:leaked-key-${source}`, key.org_id, keyPrefix, requestId, c.req.header("cf-connecting-ip") ?? null, detail, now);
    const url = report.url ? String(report.url).slice(0, 500) : null;
    const exposed = { key_type: key.key_type, key_prefix: keyPrefix, source, url };
    if (key.key_type === "ck_live") {
      statements.push(audit("CLIENT_KEY_REPORTED", "1"));
      // Publishable, so not revoked; the org and its partner hear of it once.
      if (key.org_id) statements.push(eventStatement(db, "key.exposed", key.org_id, { ...exposed, revoked: false }, now, undefined, `key.exposed:${key.id}`));
      return;
    }
    // Revoke now (a key in its window too), then, only if that changed the row, audit; then, only if audited, email.
    statements.push(
      db.prepare(`UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)`).bind(now, key.id, now),
      audit("KEY_EXPOSED", "changes() = 1"),
    );
    if (key.org_id && key.owner_user_id !== null) {
      const id = ulid();
      outboxIds.push(id);
      statements.push(
        db
          .prepare(
            `INSERT INTO outbox (id, kind, payload, created_at, updated_at) SELECT ?, 'key_exposed', json_object('user_id', ?, 'org_id', ?, 'key_prefix', ?, 'url', ?), ?, ? WHERE changes() = 1`,
          )
          .bind(id, key.owner_user_id, key.org_id, keyPrefix, report.url ? String(report.url).slice(0, 500) : null, now, now),
      );
    }
    // Each only if the statement before it wrote its row (so only after this report revoked the key).
    const revokedByUs = { sql: "changes() = 1", binds: [] };
    if (key.org_id) {
      statements.push(
        eventStatement(db, "key.exposed", key.org_id, { ...exposed, revoked: true }, now, revokedByUs),
        eventStatement(db, "key.revoked", key.org_id, { key_type: key.key_type, key_prefix: keyPrefix, reason: "exposed" }, now, revokedByUs),
      );
    }
    if (key.partner_id) statements.push(partnerEventStatement(db, "key.exposed", key.partner_id, { ...exposed, revoked: true }, now, revokedByUs));
    if (key.org_id) touched.orgs.add(key.org_id);
    if (key.partner_id) touched.partners.add(key.partner_id);
  });
  if (statements.length) {
    await db.batch(statements);
    deliverEventsAfterResponse(c);
  }
  // verifyKey and the auth caches of this isolate stop at once; other isolates within the revocation bound.
  for (const org of touched.orgs) forgetOrg(org);
  for (const partner of touched.partners) forgetPartner(partner);
  if (outboxIds.length) c.executionCtx.waitUntil(enqueueOutbox(c.env.OUTBOX_QUEUE, outboxIds)); // ids with no row change nothing
  return ours;
}
