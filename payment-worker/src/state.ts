// The payment worker's D1 state. Statements and small queries only; events.ts decides and batches them.

export const EVENT_RETENTION_DAYS = 35; // Stripe retries for 3 days; the issue asks for at least 30
export const STALE_CLAIM_MS = 2 * 60_000; // a claim this old belonged to a run that died: take it over

const iso = (ms = Date.now()) => new Date(ms).toISOString();

export interface Account {
  org_id: string;
  customer_id: string;
  subscription_id: string | null;
  email: string | null;
  last_event_created: number | null;
  last_event_rank: number | null;
  last_event_id: string | null;
  cancelled_at: number | null;
  /** Stripe `created` of the open or lost dispute, and which; null when none (or it was won). */
  disputed_at: number | null;
  dispute_status: "open" | "lost" | null;
}

export type Claim = { claimed: true } | { claimed: false; status: "processing" | "done"; outcome: string | null };

/** Claims an event id for this delivery: exactly one of concurrent deliveries gets it. */
export async function claimEvent(db: D1Database, eventId: string, type: string, now = Date.now()): Promise<Claim> {
  const claimed = await db
    .prepare(
      `INSERT INTO stripe_events (event_id, type, status, received_at, updated_at) VALUES (?, ?, 'processing', ?, ?)
       ON CONFLICT (event_id) DO UPDATE SET updated_at = excluded.updated_at
        WHERE stripe_events.status = 'processing' AND stripe_events.updated_at < ?
       RETURNING event_id`,
    )
    .bind(eventId, type, iso(now), iso(now), iso(now - STALE_CLAIM_MS))
    .first();
  if (claimed) return { claimed: true };
  const row = await db
    .prepare(`SELECT status, outcome FROM stripe_events WHERE event_id = ?`)
    .bind(eventId)
    .first<{ status: "processing" | "done"; outcome: string | null }>();
  return { claimed: false, status: row?.status ?? "processing", outcome: row?.outcome ?? null };
}

export const finishEvent = (db: D1Database, eventId: string, outcome: string) =>
  db.prepare(`UPDATE stripe_events SET status = 'done', outcome = ?, updated_at = ? WHERE event_id = ?`).bind(outcome, iso(), eventId).run();

/** Gives the event back (a transient failure): Stripe's retry claims it again. */
export const releaseEvent = (db: D1Database, eventId: string) =>
  db.prepare(`DELETE FROM stripe_events WHERE event_id = ? AND status = 'processing'`).bind(eventId).run();

/** The account an event names, by its org_id metadata or else by its subscription, in one query. */
export const findAccount = (db: D1Database, orgId: string | null, subscriptionId: string | null) =>
  orgId || subscriptionId
    ? db
        .prepare(`SELECT * FROM billing_accounts WHERE org_id = ?1 OR subscription_id = ?2 ORDER BY org_id = ?1 DESC LIMIT 1`)
        .bind(orgId, subscriptionId)
        .first<Account>()
    : Promise.resolve(null);

export const accountByPayment = (db: D1Database, refs: string[]) =>
  refs.length
    ? db
        .prepare(
          `SELECT a.* FROM billing_payments p JOIN billing_accounts a ON a.org_id = p.org_id WHERE p.payment_ref IN (${refs.map(() => "?").join(", ")}) LIMIT 1`,
        )
        .bind(...refs)
        .first<Account>()
    : Promise.resolve(null);

/** Records who owns an org (first checkout wins: a later one for the same org changes nothing). */
export const accountStatement = (db: D1Database, a: { org_id: string; customer_id: string; subscription_id: string | null; email: string | null }) =>
  db
    .prepare(
      `INSERT INTO billing_accounts (org_id, customer_id, subscription_id, email, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (org_id) DO NOTHING`,
    )
    .bind(a.org_id, a.customer_id, a.subscription_id, a.email, iso(), iso());

/** Records charges and payment intents as the org's (a dispute names only these). */
export const paymentStatements = (db: D1Database, orgId: string, refs: string[]) =>
  refs.map((ref) =>
    db.prepare(`INSERT INTO billing_payments (payment_ref, org_id, created_at) VALUES (?, ?, ?) ON CONFLICT (payment_ref) DO NOTHING`).bind(ref, orgId, iso()),
  );

/**
 * Takes the org's "last applied" slot for this event if it sorts after the last one applied, by (created, rank,
 * event id); a redelivery of the event that holds the slot takes it again (its earlier run may have failed midway;
 * the service's idempotency makes the repeat safe). It changed no row: an older event, to acknowledge and ignore.
 */
export function orderSlotStatement(db: D1Database, orgId: string, e: { created: number; rank: number; id: string }, cancels = false) {
  return db
    .prepare(
      `UPDATE billing_accounts
          SET last_event_created = ?1, last_event_rank = ?2, last_event_id = ?3, updated_at = ?4,
              cancelled_at = CASE WHEN ?6 THEN COALESCE(cancelled_at, ?1) ELSE cancelled_at END
        WHERE org_id = ?5
          AND (last_event_id IS NULL OR last_event_id = ?3 OR (?1, ?2, ?3) > (last_event_created, last_event_rank, last_event_id))`,
    )
    .bind(e.created, e.rank, e.id, iso(), orgId, cancels ? 1 : 0);
}

/** Runs statements then the order slot in one batch; true when this event took the slot. */
export async function takeOrderSlot(db: D1Database, before: D1PreparedStatement[], slot: D1PreparedStatement): Promise<boolean> {
  const results = await db.batch([...before, slot]);
  return results.at(-1)!.meta.changes === 1;
}

/** Records a dispute as open or lost, or forgets it (null: won). */
export const disputeStatement = (db: D1Database, orgId: string, status: "open" | "lost" | null, created: number) =>
  db
    .prepare(
      `UPDATE billing_accounts SET dispute_status = ?, disputed_at = CASE WHEN ? IS NULL THEN NULL ELSE COALESCE(disputed_at, ?) END, updated_at = ? WHERE org_id = ?`,
    )
    .bind(status, status, created, iso(), orgId);

/** Cancellation is terminal: recorded whatever its order (it never un-happens). */
export const cancellationStatement = (db: D1Database, orgId: string, created: number) =>
  db.prepare(`UPDATE billing_accounts SET cancelled_at = COALESCE(cancelled_at, ?), updated_at = ? WHERE org_id = ?`).bind(created, iso(), orgId);

export const deleteOldEvents = (db: D1Database, now = Date.now()) =>
  db
    .prepare(`DELETE FROM stripe_events WHERE status = 'done' AND updated_at < ?`)
    .bind(iso(now - EVENT_RETENTION_DAYS * 86_400_000))
    .run();
