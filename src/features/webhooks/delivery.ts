// Delivery: the webhook queue's consumer sends every delivery that is due, signed the Standard Webhooks way, and
// records each attempt. A message only wakes it (the deliveries live in D1, written with their events), so a lost
// or duplicate message loses or repeats nothing: claiming is one UPDATE that two consumers cannot both win.
//
// A 2xx within DELIVERY_TIMEOUT_MS is delivered. 410 Gone disables the endpoint. Anything else (another status, a
// timeout, a network error) is retried after RETRY_DELAYS_SECONDS (about three days in all); after the last attempt
// the delivery is failed, a record of it goes to the dead-letter queue, and the endpoint is marked failing (its next
// success enables it again). Queues delay a message by at most 12 hours, so a longer wait is woken by the cron.
import { EVENT_ID_SQL, keyEventDataSql, type WebhookWake, wakeWebhookConsumer } from "../../lib/data/events";
import type { Bindings } from "../../lib/http/context";
import { newRequestId } from "../../lib/util/ids";
import { isoNow } from "../../lib/util/time";
import { currentSecretKey, decryptSecret, encryptSecret, signV1 } from "./secrets";

/** The wait after attempt n (1-based) fails; after attempt RETRY_DELAYS_SECONDS.length + 1 there is no retry. */
export const RETRY_DELAYS_SECONDS = [5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 14 * 3600, 20 * 3600, 20 * 3600];
export const MAX_ATTEMPTS = RETRY_DELAYS_SECONDS.length + 1;
export const DELIVERY_TIMEOUT_MS = 15_000;
/** A delivery claimed this long ago by a consumer that never finished (it died mid-send) is due again. */
export const CLAIM_STUCK_MS = 2 * 60_000;
const CLAIM_LIMIT = 50;
const MAX_QUEUE_DELAY_SECONDS = 12 * 3600;
const DAY_MS = 86_400_000;
export const WEBHOOK_RETENTION_DAYS = 30;

export interface DeadDelivery {
  delivery_id: string;
  event_id: string;
  event_type: string;
  endpoint_id: string;
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
}

interface Claimed {
  id: string;
  attempts: number;
  step: number;
  event_id: string;
  type: string;
  data: string;
  event_created_at: string;
  endpoint_id: string;
  url: string;
  endpoint_status: string;
  secret_ciphertext: string;
  previous_secret_ciphertext: string | null;
  previous_secret_expires_at: string | null;
}

type Result =
  | { kind: "delivered"; status: number }
  | { kind: "gone"; status: number }
  | { kind: "error"; status: number | null; error: string | null }
  | { kind: "skipped"; error: string };

/** The body every attempt of an event sends (the same bytes each time): Standard Webhooks' {type, timestamp, data}. */
export const eventBody = (e: { type: string; data: string; created_at: string }) =>
  JSON.stringify({ type: e.type, timestamp: e.created_at, data: JSON.parse(e.data) });

/** The Standard Webhooks headers for one attempt: each current secret signs (two during a secret's 24-hour overlap). */
export async function signedHeaders(secrets: Uint8Array[], id: string, timestamp: number, body: string): Promise<Record<string, string>> {
  const signatures = await Promise.all(secrets.map((s) => signV1(s, id, timestamp, body)));
  return {
    "content-type": "application/json",
    "user-agent": "org-key-authority-webhooks/1",
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": signatures.join(" "),
  };
}

async function attempt(env: Bindings, d: Claimed, nowMs: number): Promise<Result> {
  if (d.endpoint_status === "disabled") return { kind: "skipped", error: "endpoint_disabled" };
  const secrets = [await decryptSecret(env, d.endpoint_id, d.secret_ciphertext)];
  if (d.previous_secret_ciphertext && d.previous_secret_expires_at && d.previous_secret_expires_at > isoNow(nowMs)) {
    secrets.push(await decryptSecret(env, d.endpoint_id, d.previous_secret_ciphertext));
  }
  if (!secrets[0]) {
    console.error(
      JSON.stringify({
        level: "error",
        request_id: newRequestId(),
        event: "webhook_secret_unavailable",
        endpoint_id: d.endpoint_id,
        error: "no WEBHOOK_SECRET_KEY decrypts this endpoint's secret",
      }),
    );
    return { kind: "error", status: null, error: "secret_unavailable" };
  }
  const body = eventBody({ type: d.type, data: d.data, created_at: d.event_created_at });
  const headers = await signedHeaders(
    secrets.filter((s): s is Uint8Array => s !== null),
    d.event_id,
    Math.floor(nowMs / 1000),
    body,
  );
  try {
    const res = await fetch(d.url, { method: "POST", headers, body, redirect: "manual", signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS) });
    await res.body?.cancel();
    if (res.status >= 200 && res.status < 300) return { kind: "delivered", status: res.status };
    if (res.status === 410) return { kind: "gone", status: res.status };
    return { kind: "error", status: res.status, error: null };
  } catch (err) {
    const name = err instanceof Error ? err.name : "Error";
    return { kind: "error", status: null, error: name === "TimeoutError" || name === "AbortError" ? "timeout" : "network_error" };
  }
}

/**
 * Sends what is due (up to CLAIM_LIMIT deliveries; more wakes the consumer again): one D1 batch claims, the
 * requests go out concurrently, one D1 batch records every outcome.
 */
export async function deliverDue(env: Bindings, nowMs = Date.now()): Promise<{ delivered: number; retrying: number; failed: number }> {
  const db = env.DB;
  const counts = { delivered: 0, retrying: 0, failed: 0 };
  try {
    await currentSecretKey(env);
  } catch {
    // Nothing can be signed: the deliveries stay pending (the cron wakes the consumer again once it is set).
    console.error(JSON.stringify({ level: "error", request_id: newRequestId(), event: "webhooks_paused", error: "WEBHOOK_SECRET_KEY is not set" }));
    return counts;
  }
  const claimId = crypto.randomUUID();
  const now = isoNow(nowMs);
  const [, { results: claimed }] = await db.batch<Claimed>([
    db
      .prepare(
        `UPDATE webhook_deliveries SET status = 'delivering', claim_id = ?, attempts = attempts + 1, step = step + 1, updated_at = ?
          WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ${CLAIM_LIMIT})`,
      )
      .bind(claimId, now, now),
    db
      .prepare(
        `SELECT d.id, d.attempts, d.step, d.event_id, e.type, e.data, e.created_at AS event_created_at,
                w.id AS endpoint_id, w.url, w.status AS endpoint_status, w.secret_ciphertext, w.previous_secret_ciphertext, w.previous_secret_expires_at
           FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id JOIN webhook_endpoints w ON w.id = d.endpoint_id
          WHERE d.claim_id = ? AND d.status = 'delivering'`,
      )
      .bind(claimId),
  ]);
  if (claimed.length === 0) return counts;

  const started = Date.now();
  const results = await Promise.all(claimed.map(async (d) => ({ d, result: await attempt(env, d, nowMs), ms: Date.now() - started })));
  const finishedAt = isoNow();
  const statements: D1PreparedStatement[] = [];
  const dead: DeadDelivery[] = [];
  let soonest = Infinity;
  for (const { d, result, ms } of results) {
    const status = "status" in result ? result.status : null;
    const error = "error" in result ? result.error : null;
    if (result.kind === "skipped") {
      counts.failed++;
      statements.push(
        db
          .prepare(
            `UPDATE webhook_deliveries SET status = 'failed', attempts = attempts - 1, last_error = ?, next_attempt_at = NULL, updated_at = ? WHERE id = ? AND claim_id = ?`,
          )
          .bind(result.error, finishedAt, d.id, claimId),
      );
      continue;
    }
    let next: string | null = null;
    let final: "delivered" | "failed" | "pending";
    if (result.kind === "delivered") final = "delivered";
    else if (result.kind === "gone") final = "failed";
    else if (d.step >= MAX_ATTEMPTS) final = "failed";
    else {
      final = "pending";
      const delay = RETRY_DELAYS_SECONDS[d.step - 1];
      next = isoNow(nowMs + delay * 1000);
      soonest = Math.min(soonest, delay);
    }
    counts[final === "pending" ? "retrying" : final]++;
    statements.push(
      db
        .prepare(
          `UPDATE webhook_deliveries SET status = ?, last_status_code = ?, last_error = ?, next_attempt_at = ?, updated_at = ? WHERE id = ? AND claim_id = ?`,
        )
        .bind(final, status, error, next, finishedAt, d.id, claimId),
      db
        .prepare(
          `INSERT INTO webhook_attempts (delivery_id, endpoint_id, event_id, attempt, status_code, error, duration_ms, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .bind(d.id, d.endpoint_id, d.event_id, d.attempts, status, error, ms, next, finishedAt),
    );
    if (result.kind === "delivered") {
      statements.push(
        db
          .prepare(`UPDATE webhook_endpoints SET status = 'enabled', status_reason = NULL, updated_at = ? WHERE id = ? AND status = 'failing'`)
          .bind(finishedAt, d.endpoint_id),
      );
    } else if (result.kind === "gone") {
      statements.push(
        db
          .prepare(`UPDATE webhook_endpoints SET status = 'disabled', status_reason = ?, updated_at = ? WHERE id = ?`)
          .bind(`answered 410 Gone at ${finishedAt}`, finishedAt, d.endpoint_id),
      );
    } else if (final === "failed") {
      dead.push({
        delivery_id: d.id,
        event_id: d.event_id,
        event_type: d.type,
        endpoint_id: d.endpoint_id,
        attempts: d.attempts,
        last_status_code: status,
        last_error: error,
      });
      statements.push(
        db
          .prepare(`UPDATE webhook_endpoints SET status = 'failing', status_reason = ?, updated_at = ? WHERE id = ? AND status = 'enabled'`)
          .bind(`event ${d.event_id} failed after ${d.step} attempts (last at ${finishedAt})`, finishedAt, d.endpoint_id),
      );
    }
  }
  await db.batch(statements);
  // Dead deliveries stay in D1 (failed, with every attempt) and are also handed to the dead-letter queue.
  if (dead.length) await env.WEBHOOK_DEAD_LETTER_QUEUE.sendBatch(dead.map((body) => ({ body })));
  if (claimed.length === CLAIM_LIMIT) await wakeWebhookConsumer(env.WEBHOOK_QUEUE);
  else if (soonest !== Infinity) await wakeWebhookConsumer(env.WEBHOOK_QUEUE, Math.min(soonest, MAX_QUEUE_DELAY_SECONDS));
  return counts;
}

export async function consumeWebhooks(batch: MessageBatch<WebhookWake>, env: Bindings) {
  await deliverDue(env); // a D1 failure throws: the queue redelivers the wake
  batch.ackAll();
}

const keyEvent = (notice: string | null) => keyEventDataSql({ expires_at: "k.expires_at", ...(notice ? { notice: `'${notice}'` } : {}) });

/**
 * The cron's part: key.expiring (24 hours and 1 hour before a window ends, each once; a window shorter than 24
 * hours gets only the 1-hour notice) and key.expired (once), claims left by a consumer that died, retention, a
 * re-encryption pass while the secret key rotates, and a wake when anything is due.
 */
export async function sweepWebhooks(env: Bindings, nowMs = Date.now()) {
  const db = env.DB;
  const at = (ms: number) => isoNow(ms);
  const now = at(nowMs);
  const timeEvent = (type: string, notice: string | null, dedupe: string, from: string, to: string) =>
    db
      .prepare(
        `INSERT OR IGNORE INTO webhook_events (id, type, org_id, partner_id, data, dedupe_key, created_at)
         SELECT ${EVENT_ID_SQL}, ?, k.org_id, o.partner_id, ${keyEvent(notice)}, ? || k.id, ?
           FROM api_keys k JOIN organizations o ON o.org_id = k.org_id
          WHERE k.expires_at IS NOT NULL AND k.revoked_at IS NULL AND k.expires_at > ? AND k.expires_at <= ?
          ORDER BY k.expires_at`,
      )
      .bind(type, dedupe, now, from, to);
  const results = await db.batch([
    timeEvent("key.expiring", "24h", "key.expiring:24h:", at(nowMs + 3600_000), at(nowMs + DAY_MS)),
    timeEvent("key.expiring", "1h", "key.expiring:1h:", now, at(nowMs + 3600_000)),
    // A window that ended in the last 7 days (older ones were reported when they ended, or before events existed).
    timeEvent("key.expired", null, "key.expired:", at(nowMs - 7 * DAY_MS), now),
    db
      .prepare(`UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?, updated_at = ? WHERE status = 'delivering' AND updated_at < ?`)
      .bind(now, now, at(nowMs - CLAIM_STUCK_MS)),
    db.prepare(`DELETE FROM webhook_attempts WHERE created_at < ?`).bind(at(nowMs - WEBHOOK_RETENTION_DAYS * DAY_MS)),
    db.prepare(`DELETE FROM webhook_deliveries WHERE status IN ('delivered', 'failed') AND updated_at < ?`).bind(at(nowMs - WEBHOOK_RETENTION_DAYS * DAY_MS)),
    db
      .prepare(`DELETE FROM webhook_events WHERE created_at < ? AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = webhook_events.id)`)
      .bind(at(nowMs - WEBHOOK_RETENTION_DAYS * DAY_MS)),
    db.prepare(`SELECT EXISTS (SELECT 1 FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ?) AS due`).bind(now),
  ]);
  const due = (results.at(-1)!.results[0] as { due: number }).due === 1;
  if (due) await wakeWebhookConsumer(env.WEBHOOK_QUEUE);
  if (env.WEBHOOK_SECRET_KEY_PREVIOUS?.trim()) await reencryptSecrets(env);
  return { events: results.slice(0, 3).reduce((n, r) => n + r.meta.changes, 0), due };
}

/** While WEBHOOK_SECRET_KEY_PREVIOUS is set: up to 100 endpoints a run move to the current key. */
export async function reencryptSecrets(env: Bindings): Promise<number> {
  const db = env.DB;
  const key = await currentSecretKey(env);
  const { results } = await db
    .prepare(
      `SELECT id, secret_ciphertext, previous_secret_ciphertext FROM webhook_endpoints WHERE secret_key_id != ?1 OR previous_secret_key_id != ?1 LIMIT 100`,
    )
    .bind(key.id)
    .all<{ id: string; secret_ciphertext: string; previous_secret_ciphertext: string | null }>();
  const updates: D1PreparedStatement[] = [];
  for (const row of results) {
    const secret = await decryptSecret(env, row.id, row.secret_ciphertext);
    if (!secret) continue; // under neither key: left as is (and logged when a delivery needs it)
    const previous = row.previous_secret_ciphertext ? await decryptSecret(env, row.id, row.previous_secret_ciphertext) : null;
    const sealed = await encryptSecret(key, row.id, secret);
    const sealedPrevious = previous ? await encryptSecret(key, row.id, previous) : null;
    updates.push(
      db
        .prepare(
          `UPDATE webhook_endpoints SET secret_ciphertext = ?, secret_key_id = ?, previous_secret_ciphertext = ?, previous_secret_key_id = ? WHERE id = ? AND secret_ciphertext = ?`,
        )
        .bind(sealed.ciphertext, key.id, sealedPrevious?.ciphertext ?? null, sealedPrevious ? key.id : null, row.id, row.secret_ciphertext),
    );
  }
  if (updates.length) await db.batch(updates);
  return updates.length;
}
