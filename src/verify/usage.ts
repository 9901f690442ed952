// The usage queue's consumer: adds the counts and key last-use minutes that requests recorded
// (src/lib/data/usage-records.ts) into usage_daily and api_keys.last_used_at, with the usage events they cause.
import { EVENT_ID_SQL, wakeWebhookConsumer } from "../lib/data/events";
import type { UsageCount, UsageMessage } from "../lib/data/usage-records";
import type { Bindings } from "../lib/http/context";
import { isoNow } from "../lib/util/time";
import { usagePeriod, utcDay } from "../lib/util/usage-period";
import { TIER_LIMITS } from "../features/orgs/model";

export type { UsageMessage } from "../lib/data/usage-records";

/** The percentages of the tier limit that send usage.threshold_reached. */
export const USAGE_THRESHOLDS = [80, 100] as const;

const TIER_LIMIT_SQL = `CASE o.tier ${Object.entries(TIER_LIMITS)
  .map(([tier, limit]) => `WHEN '${tier}' THEN ${limit}`)
  .join(" ")} END`;

/**
 * usage.threshold_reached for each org of `orgIds` whose rolling 30-day count has reached 80 % or 100 % of its tier
 * limit: each threshold at most once per org and calendar month (UTC), in the batch that added the counts.
 */
function thresholdEvents(db: D1Database, orgIds: string[], now: number) {
  const period = usagePeriod(now);
  const month = utcDay(now).slice(0, 7);
  return db
    .prepare(
      `INSERT OR IGNORE INTO webhook_events (id, type, org_id, partner_id, data, dedupe_key, created_at)
       SELECT ${EVENT_ID_SQL}, 'usage.threshold_reached', o.org_id, o.partner_id,
              json_object('org_id', o.org_id, 'threshold_percent', t.p, 'used', u.used, 'limit', ${TIER_LIMIT_SQL}, 'tier', o.tier, 'period_start', ?),
              'usage:' || o.org_id || ':' || ? || ':' || t.p, ?
         FROM (SELECT org_id, SUM(count) AS used FROM usage_daily WHERE day >= ? AND org_id IN (SELECT value FROM json_each(?)) GROUP BY org_id) u
         JOIN organizations o ON o.org_id = u.org_id
         JOIN (${USAGE_THRESHOLDS.map((p) => `SELECT ${p} AS p`).join(" UNION ALL ")}) t
        WHERE u.used * 100 >= t.p * ${TIER_LIMIT_SQL}
        ORDER BY t.p`,
    )
    .bind(period.start, month, isoNow(now), period.startDay, JSON.stringify(orgIds));
}

/**
 * Queue consumer: one D1 batch per message batch (counts summed, last use per key maximal, and the usage events
 * those counts cause); a failure retries it.
 */
export async function consumeUsage(batch: MessageBatch<UsageMessage>, env: Pick<Bindings, "DB" | "WEBHOOK_QUEUE">, now = Date.now()) {
  const db = env.DB;
  const totals = new Map<string, UsageCount>();
  const lastUse = new Map<number, string>();
  for (const { body } of batch.messages) {
    if (body.kind === "key_used") {
      if ((lastUse.get(body.key_id) ?? "") < body.at) lastUse.set(body.key_id, body.at);
      continue;
    }
    const key = `${body.org_id}|${body.day}`;
    const t = totals.get(key);
    if (t) t.count += body.count;
    else totals.set(key, { ...body });
  }
  const statements = [
    ...[...totals.values()].map((t) =>
      db
        .prepare(
          `INSERT INTO usage_daily (org_id, day, count) VALUES (?, ?, ?)
           ON CONFLICT (org_id, day) DO UPDATE SET count = count + excluded.count`,
        )
        .bind(t.org_id, t.day, t.count),
    ),
    ...[...lastUse].map(([keyId, at]) =>
      db.prepare(`UPDATE api_keys SET last_used_at = ?1 WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1)`).bind(at, keyId),
    ),
  ];
  const orgIds = [...new Set([...totals.values()].map((t) => t.org_id))];
  if (orgIds.length) statements.push(thresholdEvents(db, orgIds, now));
  if (statements.length) {
    const results = await db.batch(statements);
    if (orgIds.length && results.at(-1)!.meta.changes > 0) await wakeWebhookConsumer(env.WEBHOOK_QUEUE);
  }
  batch.ackAll();
}
