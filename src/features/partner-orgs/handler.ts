import type { RouteHandler } from "@hono/zod-openapi";
import { auditFailure, auditStatement } from "../../lib/data/audit";
import { clientIp } from "../../lib/http/rate-limit";
import { countStatement, dailyProvisionCap, EMAIL_TAKEN_PER_HOUR, isQuotaExceeded, quotaExceeded } from "./quota";
import type { AppContext, AppEnv } from "../../lib/http/context";
import { uniqueViolation } from "../../lib/data/d1";
import { ApiError } from "../../lib/http/errors";
import { ulid } from "../../lib/util/ids";
import { answer, fingerprint, type Idempotency, outcomeUnderMark, runIdempotentBatch, runWithOutcome, sqlText } from "../../lib/data/idempotency";
import { currentPepper, KEY_TYPES, mintKey, type MintedKey } from "../../lib/keys/keys";
import { decodeCursor, encodeCursor } from "../../lib/http/paging";
import { retireKeys } from "../../lib/keys/rotation";
import { isoNow } from "../../lib/util/time";
import { forgetOrg } from "../../verify/verify-key";
import { enqueueOutbox } from "../onboarding/outbox-queue";
import { INVISIBLE_FORMAT_CHARS, INVISIBLE_FORMAT_MESSAGE } from "../orgs/model";
import { insertOrgKey, orgChangedBy } from "../orgs/queries";
import * as q from "./queries";
import type { getByExternalIdRoute, getByIdentifierRoute, listRoute, provisionRoute, rotateKeysRoute } from "./route";
import { baseSlug } from "./slug";
import { deliverEventsAfterResponse, eventStatement, keyRotatedEvents, keysCreatedEvents } from "../../lib/data/events";

/** Idempotency rows are scoped to the partner: the same key from another partner is another request. */
const endpoint = (c: AppContext, route: string) => `${route} partner=${c.get("partner").partner_id}`;

const toPartnerOrganization = (row: q.PartnerOrgRow, keys?: { client: MintedKey; server: MintedKey }) => ({
  userId: row.owner_user_id,
  organizationIdentifier: row.identifier,
  organizationSlug: row.slug,
  clientKey: keys?.client.plaintext ?? null,
  serverKey: keys?.server.plaintext ?? null,
  partnerExternalId: row.external_id,
  clientKeyPrefix: keys?.client.prefix ?? row.client_prefix,
  serverKeyPrefix: keys?.server.prefix ?? row.server_prefix,
  clientKeyLastUsedAt: keys ? null : row.client_last_used_at,
  serverKeyLastUsedAt: keys ? null : row.server_last_used_at,
});

/**
 * Partner reads go through a D1 session, so read replicas can serve them when replication is on. Without a bookmark
 * the session starts at the primary, so a partner's read right after its own write always sees it; a client that
 * sends back the `X-D1-Bookmark` of an earlier response may be served by any replica at least that fresh.
 */
async function read<T>(c: AppContext, query: (session: D1DatabaseSession) => Promise<T>): Promise<T> {
  const given = c.req.header("x-d1-bookmark");
  const bookmark = given && BOOKMARK.test(given) ? given : "first-primary";
  let session = c.env.DB.withSession(bookmark);
  let result: T;
  try {
    result = await query(session);
  } catch (err) {
    if (bookmark === "first-primary") throw err;
    session = c.env.DB.withSession("first-primary"); // a bookmark D1 does not know: read from the primary
    result = await query(session);
  }
  const next = session.getBookmark();
  if (next) c.header("X-D1-Bookmark", next);
  return result;
}
const BOOKMARK = /^[0-9a-f-]{8,128}$/i;

const notFound = () => new ApiError(404, "NOT_FOUND", "No such organization.");

export const provision: RouteHandler<typeof provisionRoute, AppEnv> = async (c) => {
  const body = c.req.valid("json");
  const idempotencyKey = c.req.valid("header")["Idempotency-Key"];
  const { partner_id: partnerId } = c.get("partner");
  const pepper = await currentPepper(c.env);
  const db = c.env.DB;
  const now = isoNow();
  const businessName = body.businessName || undefined;
  // Well-formed JSON whose name is refused for what it would show: 422, as the trust issue decided (other partner
  // body errors are 400, as the partner API documents).
  if (businessName && INVISIBLE_FORMAT_CHARS.test(businessName)) {
    throw new ApiError(422, "VALIDATION_FAILED", "The request is not valid.", [{ location: "body", field: "businessName", message: INVISIBLE_FORMAT_MESSAGE }]);
  }
  const org: q.NewPartnerOrg = {
    orgId: `org_${ulid().toLowerCase()}`,
    identifier: crypto.randomUUID(),
    baseSlug: baseSlug(businessName, body.email),
    name: businessName ?? body.email,
    partnerId,
    externalId: body.externalId,
  };
  const client = mintKey("ck_live");
  const server = mintKey("sk_live");
  const [clientHash, serverHash] = await Promise.all([pepper.hash(client.plaintext), pepper.hash(server.plaintext)]);
  const actor = `partner:${partnerId}`;
  const requestId = c.get("requestId");
  const outboxId = ulid();

  const nowMs = Date.parse(now);
  const dailyCap = dailyProvisionCap(c.env);
  const statements = [
    countStatement(db, partnerId, "welcome_emails", dailyCap, nowMs), // fails past the daily quota: 429
    q.insertOwner(db, body.email, partnerId, body.externalId, now), // skipped when the externalId is taken…
    q.insertPartnerOrg(db, org, body.email, now), // …so that this fails with EXTERNAL_ID_TAKEN first
    q.countPartnerOrg(db, partnerId),
    insertOrgKey(db, org.orgId, client, clientHash, pepper.id, now),
    insertOrgKey(db, org.orgId, server, serverHash, pepper.id, now),
    eventStatement(db, "org.created", org.orgId, { external_id: body.externalId, keys: "minted" }, now),
    keysCreatedEvents(db, org.orgId, now),
    auditStatement(
      db,
      {
        event_type: "ORG_PROVISIONED",
        actor,
        org_id: org.orgId,
        key_prefix: KEY_TYPES.ck_live + client.prefix,
        request_id: requestId,
        detail: `server_key=${KEY_TYPES.sk_live}${server.prefix}`,
      },
      now,
    ),
    auditStatement(db, { event_type: "USER_CREATED", actor, org_id: org.orgId, request_id: requestId, detail: "role=owner" }, now),
    q.insertWelcomeEmail(db, outboxId, org.orgId, body.email, now),
    q.selectProvisioned(db, org.orgId),
  ];
  const idem: Idempotency | undefined = idempotencyKey
    ? {
        endpoint: endpoint(c, "POST /api/v1/partner/organizations"),
        key: idempotencyKey,
        fingerprint: await fingerprint({ ...body, businessName }),
        result: q.provisionedResult(org.orgId, client.prefix, server.prefix),
      }
    : undefined;

  let outcome: Awaited<ReturnType<typeof runIdempotentBatch>>;
  try {
    outcome = await runIdempotentBatch(c, statements, idem);
  } catch (err) {
    const violated = uniqueViolation(err);
    if (violated === "organizations.partner_id, organizations.external_id") {
      throw new ApiError(400, "EXTERNAL_ID_TAKEN", "You already have an organization with this externalId.");
    }
    if (violated === "users_email_lower_unique") throw await emailTaken(c, partnerId, requestId, nowMs);
    if (isQuotaExceeded(err)) {
      await auditFailure(
        c,
        { event_type: "PARTNER_QUOTA_EXCEEDED", actor, detail: `quota=welcome_emails cap=${dailyCap}`, ip: clientIp(c) },
        `${partnerId}|welcome_emails`,
      );
      throw quotaExceeded("welcome_emails", dailyCap, nowMs);
    }
    throw err;
  }
  if (outcome.replay) return outcome.replay as never;
  deliverEventsAfterResponse(c);
  // Committed: hand the email to the queue. If this is lost (a crash right here), the cron re-enqueues the row.
  c.executionCtx.waitUntil(enqueueOutbox(c.env.OUTBOX_QUEUE, [outboxId]));
  const created = outcome.results.at(-1)!.results[0] as { owner_user_id: number; slug: string };
  const row: q.PartnerOrgRow = {
    seq: 0,
    org_id: org.orgId,
    owner_user_id: created.owner_user_id,
    identifier: org.identifier,
    slug: created.slug,
    external_id: org.externalId,
    client_prefix: null,
    server_prefix: null,
    client_last_used_at: null,
    server_last_used_at: null,
  };
  return c.json(toPartnerOrganization(row, { client, server }), 201);
};

/**
 * 409 EMAIL_TAKEN (the partner API documents it) tells a partner that an address has an account here, perhaps
 * another partner's customer: each answer is audited with the partner, and at most EMAIL_TAKEN_PER_HOUR a partner
 * get it; past that, 429 (and nothing is revealed).
 */
async function emailTaken(c: AppContext, partnerId: string, requestId: string, nowMs: number): Promise<ApiError> {
  const db = c.env.DB;
  try {
    await db.batch([
      auditStatement(
        db,
        { event_type: "PROVISION_EMAIL_TAKEN", actor: `partner:${partnerId}`, request_id: requestId, ip: clientIp(c), detail: "status=409" },
        isoNow(nowMs),
      ),
      countStatement(db, partnerId, "email_taken", EMAIL_TAKEN_PER_HOUR, nowMs),
    ]);
  } catch (err) {
    if (!isQuotaExceeded(err)) throw err;
    await auditFailure(
      c,
      { event_type: "PARTNER_QUOTA_EXCEEDED", actor: `partner:${partnerId}`, detail: `quota=email_taken cap=${EMAIL_TAKEN_PER_HOUR}`, ip: clientIp(c) },
      `${partnerId}|email_taken`,
    );
    return quotaExceeded("email_taken", EMAIL_TAKEN_PER_HOUR, nowMs);
  }
  return new ApiError(409, "EMAIL_TAKEN", "An account with this email already exists.");
}

export const list: RouteHandler<typeof listRoute, AppEnv> = async (c) => {
  const { external_id: externalId, limit, cursor } = c.req.valid("query");
  const beforeSeq = cursor === undefined ? undefined : decodeCursor("v1", cursor, 400);
  const [page, total] = await read(c, (db) => q.listPage(db, c.get("partner").partner_id, { externalId, limit, beforeSeq }));
  const rows = page.results.slice(0, limit);
  const next = page.results.length > limit ? encodeCursor("v1", rows[rows.length - 1].seq) : null;
  return c.json({ results: rows.map((r) => toPartnerOrganization(r)), count: total.results[0]?.n ?? 0, next }, 200);
};

export const getByIdentifier: RouteHandler<typeof getByIdentifierRoute, AppEnv> = async (c) => {
  const row = await read(c, (db) => q.findByIdentifier(db, c.get("partner").partner_id, c.req.valid("param").identifier.toLowerCase()));
  if (!row) throw notFound();
  return c.json(toPartnerOrganization(row), 200);
};

export const getByExternalId: RouteHandler<typeof getByExternalIdRoute, AppEnv> = async (c) => {
  const row = await read(c, (db) => q.findByExternalId(db, c.get("partner").partner_id, c.req.valid("param").externalId));
  if (!row) throw notFound();
  return c.json(toPartnerOrganization(row), 200);
};

export const rotateKeys: RouteHandler<typeof rotateKeysRoute, AppEnv> = async (c) => {
  const { identifier } = c.req.valid("param");
  const idempotencyKey = c.req.valid("header")["Idempotency-Key"];
  const { partner_id: partnerId } = c.get("partner");
  const pepper = await currentPepper(c.env);
  const db = c.env.DB;
  // Read first: a 404 must write nothing. An org never changes partner, so the read cannot go stale.
  const row = await q.findByIdentifier(db, partnerId, identifier.toLowerCase());
  if (!row) throw notFound();
  const window = c.req.valid("json").expire_previous_in_seconds ?? 0;
  const nowMs = Date.now();
  const now = isoNow(nowMs);
  const requestId = c.get("requestId");
  const client = mintKey("ck_live");
  const server = mintKey("sk_live");
  const [clientHash, serverHash] = await Promise.all([pepper.hash(client.plaintext), pepper.hash(server.plaintext)]);
  // Every statement after the mark applies only if the org was active when the batch ran.
  const mine = orgChangedBy(row.org_id, requestId);
  const statements = [
    db.prepare(`UPDATE organizations SET last_request_id = ? WHERE org_id = ? AND status = 'active'`).bind(requestId, row.org_id),
    ...retireKeys(db, { org_id: row.org_id, key_type: "ck_live" }, nowMs, window, mine),
    ...retireKeys(db, { org_id: row.org_id, key_type: "sk_live" }, nowMs, window, mine),
    insertOrgKey(db, row.org_id, client, clientHash, pepper.id, now, mine),
    insertOrgKey(db, row.org_id, server, serverHash, pepper.id, now, mine),
    ...keyRotatedEvents(db, row.org_id, "ck_live", client.prefix, now, window ? isoNow(nowMs + window * 1000) : null, mine),
    ...keyRotatedEvents(db, row.org_id, "sk_live", server.prefix, now, window ? isoNow(nowMs + window * 1000) : null, mine),
    auditStatement(
      db,
      {
        event_type: "KEY_ROTATED",
        actor: `partner:${partnerId}`,
        org_id: row.org_id,
        key_prefix: KEY_TYPES.ck_live + client.prefix,
        request_id: requestId,
        detail: `server_key=${KEY_TYPES.sk_live}${server.prefix}${window ? ` expire_previous_in_seconds=${window}` : ""}`,
      },
      now,
      mine,
    ),
  ];
  // 200 when the org was active (this request marked it), else 409: a suspended or revoked org gets no live keys.
  const result = outcomeUnderMark(
    mine,
    { sql: "json(?)", binds: [JSON.stringify(toPartnerOrganization({ ...row, client_prefix: client.prefix, server_prefix: server.prefix }))] },
    {
      sql: `'The organization is ' || (SELECT status FROM organizations WHERE org_id = ?) || ${sqlText("; keys are rotated only for an active organization.")}`,
      binds: [row.org_id],
    },
  );
  const outcome = idempotencyKey
    ? await runIdempotentBatch(c, statements, {
        endpoint: endpoint(c, "POST /api/v1/partner/organizations/{identifier}/rotate-keys"),
        key: idempotencyKey,
        fingerprint: await fingerprint({ identifier: row.identifier, expire_previous_in_seconds: window }),
        result,
        minted: [client.plaintext, server.plaintext],
      })
    : await runWithOutcome(db, statements, result);
  if (outcome.replay) return outcome.replay as never;
  if (outcome.stored!.status !== 200) return answer(c, outcome.stored!, {}) as never;
  forgetOrg(row.org_id);
  deliverEventsAfterResponse(c);
  return c.json(toPartnerOrganization(row, { client, server }), 200);
};
