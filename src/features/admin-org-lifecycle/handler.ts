import type { Handler } from "hono";
import { auditStatement } from "../../lib/data/audit";
import { type AppContext, type AppEnv, envelope } from "../../lib/http/context";
import { ApiError } from "../../lib/http/errors";
import { answer, runIdempotentBatch, type SqlExpression, type SqlResult, sqlErrorBody, sqlText } from "../../lib/data/idempotency";
import { currentPepper, KEY_TYPES, mintKey } from "../../lib/keys/keys";
import type { OrgStatus } from "../../lib/keys/org-keys";
import { decodeCursor, encodeCursor } from "../../lib/http/paging";
import { isoNow } from "../../lib/util/time";
import { usagePeriod } from "../../lib/util/usage-period";
import { forgetOrg } from "../../verify/verify-key";
import { KEY_SHOWN_ONCE_WARNING, TIER_LIMITS, type Tier } from "../orgs/model";
import { insertOrgKey, orgChangedBy } from "../orgs/queries";
import type { Transition } from "./transitions";
import { masterIdempotencyEndpoint, viaBillingBinding } from "../../lib/auth/master-key";
import { ulid } from "../../lib/util/ids";
import { enqueueOutbox } from "../onboarding/outbox-queue";
import { deliverEventsAfterResponse, eventStatement, keysCreatedEvents, keysRevokedEvents } from "../../lib/data/events";

const BILLING_SUSPEND_NOTE = "Every API key of this org is permanently revoked; billing rotate restores access with a new key.";

const AT_FIELD = {
  billing_suspended: "suspended_at",
  suspended: "suspended_at",
  reactivated: "reactivated_at",
  revoked: "revoked_at",
  rotated: "rotated_at",
} as const;
const FLAG = { billing_suspended: "suspended", suspended: "suspended", reactivated: "reactivated", revoked: "revoked", rotated: "rotated" } as const;

const validationError = (field: string, message: string) =>
  new ApiError(422, "VALIDATION_FAILED", "The request is not valid.", [{ location: "body", field, message }]);

const inList = (states: OrgStatus[]) => states.map((s) => `'${s}'`).join(", ");

/**
 * The stored result of a transition, decided in SQL at the end of its batch: 200 when this request changed the org
 * or the org was already where the action leads (a no-op), 404 when there is no such org, 409 otherwise. The
 * handler answers with exactly this row, and a replay returns it unchanged.
 */
function transitionResult(t: Transition, orgId: string, requestId: string, success: SqlExpression): SqlResult {
  const conflict = `; this action applies when it is ${t.from.join(" or ")}.`;
  return {
    select: `SELECT status,
        CASE status
          WHEN 200 THEN ${success.sql}
          WHEN 404 THEN ${sqlErrorBody("NOT_FOUND", "'No organization ' || ? || '.'")}
          ELSE ${sqlErrorBody("ORG_STATE_CONFLICT", `'The organization is ' || org_status || ${sqlText(conflict)}`)}
        END AS body
      FROM (SELECT CASE WHEN o.org_id IS NULL THEN 404
                        WHEN o.last_request_id = ?${t.noop.length ? ` OR o.status IN (${inList(t.noop)})` : ""} THEN 200
                        ELSE 409 END AS status,
                   o.org_id, o.status AS org_status, COALESCE(o.status_changed_at, o.created_at) AS at
              FROM (SELECT 1) LEFT JOIN organizations o ON o.org_id = ?)`,
    binds: [...success.binds, orgId, requestId, orgId],
  };
}

/** One handler per row of the transition table: the change, its keys, its audit row and idempotency row, in one batch. */
export function transitionHandler(t: Transition): Handler<AppEnv> {
  return async (c: AppContext) => {
    const orgId = (c.req.valid as (t: "param") => { org_id: string })("param").org_id;
    const idempotencyKey = (c.req.valid as (t: "header") => { "Idempotency-Key": string })("header")["Idempotency-Key"];
    if (t.confirmBody) {
      const body = (c.req.valid as (t: "json") => { confirm_org_id: string; idempotency_key?: string })("json");
      if (body.confirm_org_id !== orgId) throw validationError("confirm_org_id", "Must equal the org_id in the path.");
      if (body.idempotency_key !== undefined && body.idempotency_key !== idempotencyKey) {
        throw validationError("idempotency_key", "Must equal the Idempotency-Key header.");
      }
    }
    // Billing restores through the payment worker's binding mint nothing: the old keys stay revoked, and the owner
    // is emailed to make new ones in the console (no key ever reaches the payment worker or an email).
    const reason = t.reasonQuery ? ((c.req.valid as (t: "query") => { reason: "billing" | "dispute" | "usage" })("query").reason ?? "billing") : "ops";
    const restoreWithoutKeys = t.name === "billingRotate" && viaBillingBinding(c);
    const mints = t.mintKeys && !restoreWithoutKeys;
    const pepper = mints ? await currentPepper(c.env) : null;
    const db = c.env.DB;
    const now = isoNow();
    const requestId = c.get("requestId");
    const keys = mints ? { client: mintKey("ck_live"), server: mintKey("sk_live") } : null;
    const outboxId = restoreWithoutKeys ? ulid() : null;
    const changedByUs = orgChangedBy(orgId, requestId);

    const statements: D1PreparedStatement[] = [
      db
        .prepare(
          `UPDATE organizations
              SET status = COALESCE(?, status),
                  status_changed_at = CASE WHEN ? IS NULL THEN status_changed_at ELSE ? END,
                  updated_at = ?, last_request_id = ?
            WHERE org_id = ? AND status IN (${inList(t.from)})`,
        )
        .bind(t.to, t.to, now, now, requestId, orgId),
    ];
    if (t.revokeKeys) {
      statements.push(
        db.prepare(`UPDATE api_keys SET revoked_at = ? WHERE org_id = ? AND revoked_at IS NULL AND ${changedByUs.sql}`).bind(now, orgId, ...changedByUs.binds),
      );
    }
    if (keys && pepper) {
      const [clientHash, serverHash] = await Promise.all([pepper.hash(keys.client.plaintext), pepper.hash(keys.server.plaintext)]);
      statements.push(
        insertOrgKey(db, orgId, keys.client, clientHash, pepper.id, now, changedByUs),
        insertOrgKey(db, orgId, keys.server, serverHash, pepper.id, now, changedByUs),
      );
    }
    if (outboxId) {
      statements.push(
        db
          .prepare(
            `INSERT INTO outbox (id, kind, payload, created_at, updated_at)
             SELECT ?, 'access_restored', json_object('user_id', owner_user_id, 'org_id', org_id), ?, ?
               FROM organizations WHERE org_id = ? AND owner_user_id IS NOT NULL AND ${changedByUs.sql}`,
          )
          .bind(outboxId, now, now, orgId, ...changedByUs.binds),
      );
    }
    if (t.revokeKeys) statements.push(keysRevokedEvents(db, orgId, now, t.revokeReason, changedByUs));
    if (keys) statements.push(keysCreatedEvents(db, orgId, now, changedByUs));
    if (t.event) statements.push(eventStatement(db, t.event, orgId, t.event === "org.revoked" ? {} : { reason, status: t.to }, now, changedByUs));
    statements.push(
      auditStatement(
        db,
        {
          event_type: t.audit,
          actor: `master:${t.scope}`,
          org_id: orgId,
          key_prefix: keys ? KEY_TYPES.ck_live + keys.client.prefix : null,
          request_id: requestId,
          detail: `status=${t.to ?? "unchanged"}${t.reasonQuery ? ` reason=${reason}` : ""}${keys ? ` server_key=${KEY_TYPES.sk_live}${keys.server.prefix}` : ""}${restoreWithoutKeys ? " keys=claim_in_console" : ""}`,
        },
        now,
        changedByUs,
      ),
    );

    const flag = FLAG[t.shape];
    const atField = AT_FIELD[t.shape];
    const note = t.shape === "billing_suspended" ? BILLING_SUSPEND_NOTE : null;
    const success: SqlExpression =
      t.shape === "rotated"
        ? {
            sql: "json(?)",
            binds: [
              JSON.stringify({
                rotated: true,
                org_id: orgId,
                prefix: keys?.client.prefix ?? null,
                server_prefix: keys?.server.prefix ?? null,
                rotated_at: now,
              }),
            ],
          }
        : { sql: `json_object('${flag}', json('true'), 'org_id', org_id, '${atField}', at${note ? ", 'note', ?" : ""})`, binds: note ? [note] : [] };
    const outcome = await runIdempotentBatch(
      c,
      statements,
      {
        endpoint: masterIdempotencyEndpoint(c, `POST ${t.path}`),
        key: idempotencyKey,
        fingerprint: reason === "billing" || reason === "ops" ? orgId : `${orgId} reason=${reason}`,
        result: transitionResult(t, orgId, requestId, success),
        minted: keys ? [keys.client.plaintext, keys.server.plaintext] : [],
      },
      envelope(c),
    );
    if (outcome.replay) return outcome.replay;
    if (outcome.stored!.status === 200) forgetOrg(orgId);
    deliverEventsAfterResponse(c);
    if (outboxId && outcome.stored!.status === 200) c.executionCtx.waitUntil(enqueueOutbox(c.env.OUTBOX_QUEUE, [outboxId]));
    const minted =
      keys && outcome.stored!.status === 200
        ? { new_api_key: keys.client.plaintext, new_server_api_key: keys.server.plaintext, warning: KEY_SHOWN_ONCE_WARNING }
        : {};
    return answer(c, outcome.stored!, { ...minted, ...envelope(c) });
  };
}

interface UsageRow {
  seq: number;
  org_id: string;
  tier: Tier;
  status: OrgStatus;
  status_changed_at: string | null;
  used: number;
}

const USAGE_SELECT = `SELECT o.seq, o.org_id, o.tier, o.status, o.status_changed_at,
    (SELECT COALESCE(SUM(u.count), 0) FROM usage_daily u WHERE u.org_id = o.org_id AND u.day >= ?) AS used
  FROM organizations o`;

function toUsage(row: UsageRow, period: ReturnType<typeof usagePeriod>) {
  const limit = TIER_LIMITS[row.tier];
  return {
    org_id: row.org_id,
    tier: row.tier,
    status: row.status,
    active: row.status === "active",
    interaction_count_current_period: row.used,
    period_start: period.start,
    period_end: period.end,
    tier_limit: limit,
    utilization_ratio: Math.round((row.used / limit) * 10_000) / 10_000,
    threshold_crossed: row.used >= limit,
    status_changed_at: row.status_changed_at,
  };
}

export const usageHandler: Handler<AppEnv> = async (c: AppContext) => {
  const orgId = (c.req.valid as (t: "param") => { org_id: string })("param").org_id;
  const period = usagePeriod();
  const row = await c.env.DB.prepare(`${USAGE_SELECT} WHERE o.org_id = ?`).bind(period.startDay, orgId).first<UsageRow>();
  if (!row) throw new ApiError(404, "NOT_FOUND", `No organization ${orgId}.`);
  return c.json({ ...toUsage(row, period), ...envelope(c) });
};

/** Active orgs by seq (a keyset: the same cost per page at any depth), each with its period's count. */
export const usageListHandler: Handler<AppEnv> = async (c: AppContext) => {
  const q = (c.req.valid as (t: "query") => { limit: number; cursor?: string; threshold_crossed?: "true" | "false" })("query");
  const period = usagePeriod();
  const after = q.cursor ? decodeCursor("u1", q.cursor, 422) : 0;
  const { results } = await c.env.DB.prepare(`${USAGE_SELECT} WHERE o.status = 'active' AND o.seq > ? ORDER BY o.seq LIMIT ?`)
    .bind(period.startDay, after, q.limit + 1)
    .all<UsageRow>();
  const page = results.slice(0, q.limit);
  const next = results.length > q.limit ? encodeCursor("u1", page[page.length - 1].seq) : null;
  let usage = page.map((r) => toUsage(r, period));
  if (q.threshold_crossed) usage = usage.filter((u) => String(u.threshold_crossed) === q.threshold_crossed);
  return c.json({ results: usage, next, ...envelope(c) });
};
