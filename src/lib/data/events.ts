// Events for partners and orgs (docs/contract.md): statements that write an event row in the batch of the change it
// reports, each only when the change happened (its `where`, as audit rows). The table's trigger fans each event out
// to the endpoints that want it in the same batch; after the response, the request sends one message to the
// webhook queue (deliverEventsAfterResponse), and the consumer sends what is due. Payloads carry ids and prefixes,
// never a key, a secret or an email.
import type { AppContext } from "../http/context";
import type { SqlExpression } from "./idempotency";
import { toHex } from "../util/bytes";

export const EVENT_TYPES = [
  "org.created",
  "org.suspended",
  "org.reactivated",
  "org.revoked",
  "key.created",
  "key.rotated",
  "key.expiring",
  "key.expired",
  "key.revoked",
  "key.exposed",
  "usage.threshold_reached",
  "owner.activated",
] as const;
export type EventType = (typeof EVENT_TYPES)[number];
/** Sent only by "send a test event", to that one endpoint. */
export const TEST_EVENT_TYPE = "webhook.test";

/** Why an org was suspended or reactivated. */
export const STATUS_REASONS = ["billing", "ops", "dispute", "usage"] as const;
export type StatusReason = (typeof STATUS_REASONS)[number];

const ALWAYS: SqlExpression = { sql: "1", binds: [] };

/** A new event id in SQL: msg_ and 26 hex characters (the webhook-id header). */
export const EVENT_ID_SQL = `'msg_' || lower(hex(randomblob(13)))`;
/** The same form, made here (for an event whose id a later statement of the batch needs). */
export const newEventId = () => `msg_${toHex(crypto.getRandomValues(new Uint8Array(13)))}`;
/** A delivery id in SQL (the fan-out trigger makes the same form). */
export const DELIVERY_ID_SQL = `'whdl_' || lower(hex(randomblob(12)))`;

/** The key's public form in SQL, over api_keys `k`: type prefix + 8 characters (e.g. sk_live_ABCD1234). */
const KEY_PREFIX_SQL = `k.key_type || '_' || k.prefix`;

/** A key event's data in SQL, over api_keys `k`: org, type, prefix, and the columns of `extra` (name → SQL). */
export const keyEventDataSql = (extra: Record<string, string> = {}) =>
  `json_object('org_id', k.org_id, 'key_type', k.key_type, 'key_prefix', ${KEY_PREFIX_SQL}${Object.entries(extra)
    .map(([name, sql]) => `, '${name}', ${sql}`)
    .join("")})`;

/**
 * One event about the org `orgId` (the org's partner then receives it too), with `data` (org_id is added), written
 * only when `where` holds in the batch. With `dedupeKey`, at most once ever (a second one is skipped).
 */
export function eventStatement(
  db: D1Database,
  type: EventType,
  orgId: string,
  data: Record<string, unknown>,
  now: string,
  where: SqlExpression = ALWAYS,
  dedupeKey: string | null = null,
): D1PreparedStatement {
  return db
    .prepare(
      `INSERT OR IGNORE INTO webhook_events (id, type, org_id, partner_id, data, dedupe_key, created_at)
       SELECT ${EVENT_ID_SQL}, ?, org_id, partner_id, json(?), ?, ? FROM organizations WHERE org_id = ? AND ${where.sql}`,
    )
    .bind(type, JSON.stringify({ org_id: orgId, ...data }), dedupeKey, now, orgId, ...where.binds);
}

/** An event about a partner's own key (key.exposed of a partner key): only that partner receives it. */
export function partnerEventStatement(
  db: D1Database,
  type: EventType,
  partnerId: string,
  data: Record<string, unknown>,
  now: string,
  where: SqlExpression = ALWAYS,
): D1PreparedStatement {
  return db
    .prepare(`INSERT INTO webhook_events (id, type, org_id, partner_id, data, created_at) SELECT ${EVENT_ID_SQL}, ?, NULL, ?, json(?), ? WHERE ${where.sql}`)
    .bind(type, partnerId, JSON.stringify({ partner_id: partnerId, ...data }), now, ...where.binds);
}

/**
 * One event per key of the org that `keys` selects (SQL over api_keys `k`), with the key's type, prefix and window
 * end, plus `data`; written only when `where` holds. For keys only known inside the batch (those it revoked).
 */
export function keyEventsStatement(
  db: D1Database,
  type: EventType,
  orgId: string,
  keys: SqlExpression,
  data: Record<string, unknown>,
  now: string,
  where: SqlExpression = ALWAYS,
): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO webhook_events (id, type, org_id, partner_id, data, created_at)
       SELECT ${EVENT_ID_SQL}, ?, k.org_id, o.partner_id,
              json_patch(${keyEventDataSql()}, json(?)), ?
         FROM api_keys k JOIN organizations o ON o.org_id = k.org_id
        WHERE k.org_id = ? AND (${keys.sql}) AND ${where.sql}
        ORDER BY k.id`,
    )
    .bind(type, JSON.stringify(data), now, orgId, ...keys.binds, ...where.binds);
}

/** key.created for each key this batch inserted for the org at `now` (their created_at). */
export const keysCreatedEvents = (db: D1Database, orgId: string, now: string, where: SqlExpression = ALWAYS) =>
  keyEventsStatement(db, "key.created", orgId, { sql: "k.created_at = ? AND k.revoked_at IS NULL", binds: [now] }, {}, now, where);

/** key.revoked for each key of the org (of `keyType`, or any) this batch revoked at `now`. */
export const keysRevokedEvents = (db: D1Database, orgId: string, now: string, reason: string, where: SqlExpression = ALWAYS, keyType?: string) =>
  keyEventsStatement(
    db,
    "key.revoked",
    orgId,
    keyType ? { sql: "k.revoked_at = ? AND k.key_type = ?", binds: [now, keyType] } : { sql: "k.revoked_at = ?", binds: [now] },
    { reason },
    now,
    where,
  );

/**
 * key.rotated for the new key of `keyType` (prefix `newPrefix`, inserted at `now`): the key it replaced (the newest
 * key this batch retired: put in a window ending `windowEnd`, or revoked now) with that key's end. A key whose
 * window the rotation cut short gets key.revoked (reason "rotated").
 */
export function keyRotatedEvents(
  db: D1Database,
  orgId: string,
  keyType: string,
  newPrefix: string,
  now: string,
  windowEnd: string | null,
  where: SqlExpression = ALWAYS,
): D1PreparedStatement[] {
  const replaced = windowEnd
    ? { sql: "k.revoked_at IS NULL AND k.expires_at = ?", binds: [windowEnd] }
    : { sql: "k.revoked_at = ? AND k.expires_at IS NULL", binds: [now] };
  return [
    db
      .prepare(
        `INSERT INTO webhook_events (id, type, org_id, partner_id, data, created_at)
         SELECT ${EVENT_ID_SQL}, 'key.rotated', o.org_id, o.partner_id,
                json_object('org_id', o.org_id, 'key_type', ?, 'key_prefix', ? || '_' || ?,
                            'previous_key_prefix', (SELECT ${KEY_PREFIX_SQL} FROM api_keys k WHERE k.org_id = o.org_id AND k.key_type = ? AND k.prefix != ? AND ${replaced.sql} ORDER BY k.id DESC LIMIT 1),
                            'previous_key_expires_at', ?), ?
           FROM organizations o WHERE o.org_id = ? AND ${where.sql}`,
      )
      .bind(keyType, keyType, newPrefix, keyType, newPrefix, ...replaced.binds, windowEnd ?? now, now, orgId, ...where.binds),
    keyEventsStatement(
      db,
      "key.revoked",
      orgId,
      { sql: "k.key_type = ? AND k.revoked_at = ? AND k.expires_at IS NOT NULL", binds: [keyType, now] },
      { reason: "rotated" },
      now,
      where,
    ),
  ];
}

/** owner.activated for every org the user owns (their first password, set from the invite), when `where` holds. */
export function ownerActivatedEvents(db: D1Database, userId: number, now: string, where: SqlExpression): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO webhook_events (id, type, org_id, partner_id, data, created_at)
       SELECT ${EVENT_ID_SQL}, 'owner.activated', o.org_id, o.partner_id, json_object('org_id', o.org_id, 'user_id', ?), ?
         FROM organizations o WHERE o.owner_user_id = ? AND ${where.sql}`,
    )
    .bind(userId, now, userId, ...where.binds);
}

/**
 * Marks the request as one that may have written events: after its response, the webhook consumer is woken
 * (wakeAfterResponse). A batch that rolled back wrote none, and the wake finds nothing.
 */
export function deliverEventsAfterResponse(c: AppContext) {
  c.set("eventsWritten", true);
}

/** The message that wakes the webhook consumer (it sends every delivery that is due, oldest first). */
export interface WebhookWake {
  wake: true;
}

export async function wakeWebhookConsumer(queue: Queue<WebhookWake>, delaySeconds = 0) {
  await queue.send({ wake: true }, delaySeconds ? { delaySeconds } : undefined);
}

/** Requests of one isolate within this long share one wake: the consumer takes every delivery that is due. */
export const WAKE_COALESCE_MS = 50;
/** How long an isolate trusts what it last read about whether any webhook endpoint exists. */
export const ENDPOINTS_KNOWN_MS = 10_000;

let wakePending = false;
let endpointsKnown: { any: boolean; until: number } | undefined;

/** An endpoint was just created in this isolate: wake for the next events without asking D1. */
export function noteEndpointCreated() {
  endpointsKnown = { any: true, until: Date.now() + ENDPOINTS_KNOWN_MS };
}

async function anyEndpoint(db: D1Database): Promise<boolean> {
  if (endpointsKnown && endpointsKnown.until > Date.now()) return endpointsKnown.any;
  const row = await db.prepare(`SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE status != 'disabled') AS any_endpoint`).first<{ any_endpoint: number }>();
  endpointsKnown = { any: row?.any_endpoint === 1, until: Date.now() + ENDPOINTS_KNOWN_MS };
  return endpointsKnown.any;
}

/**
 * After a response whose request wrote events, off the request path: one wake of the webhook consumer per isolate
 * per WAKE_COALESCE_MS (a request that commits after a wake was sent schedules the next), and none while no endpoint
 * exists (the events then fan out to nobody). An endpoint created in another isolate is seen here within
 * ENDPOINTS_KNOWN_MS; until then its deliveries wait for the cron's wake (every 5 minutes), never lost.
 */
export function wakeAfterResponse(
  env: { DB: D1Database; WEBHOOK_QUEUE: Queue<WebhookWake> },
  ctx: { waitUntil(p: Promise<unknown>): void },
  onError: (err: unknown) => void,
) {
  if (wakePending) return;
  wakePending = true;
  ctx.waitUntil(
    (async () => {
      await new Promise((resolve) => setTimeout(resolve, WAKE_COALESCE_MS));
      wakePending = false;
      if (await anyEndpoint(env.DB)) await wakeWebhookConsumer(env.WEBHOOK_QUEUE);
    })().catch((err) => {
      wakePending = false;
      onError(err);
    }),
  );
}
