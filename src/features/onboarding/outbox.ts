// The transactional outbox. Provisioning writes a row in its batch and, once that commits, sends the row's id to
// the outbox queue. The consumer claims the row (pending → sending, one UPDATE … RETURNING: a redelivered or
// duplicate message finds nothing to claim and never sends twice), makes a fresh set-password token, sends the
// email, and marks the row sent; for a whole message batch that is two D1 round trips. A failed send goes back to pending and is retried with backoff; after
// MAX_SEND_ATTEMPTS the row is failed and audited. The cron re-enqueues rows never enqueued (a crash between
// commit and enqueue) or stuck in sending (a crash mid-send), and deletes what is past retention.
import { newRequestId } from "../../lib/util/ids";
import { auditStatement } from "../../lib/data/audit";
import type { Bindings } from "../../lib/http/context";
import { isoNow } from "../../lib/util/time";
import { utcDay } from "../../lib/util/usage-period";
import { newToken, TOKEN_TTL_MS } from "./crypto";
import { type OwnerEmailKind, toMessage } from "./email";
import { enqueueOutbox, type OutboxMessage } from "./outbox-queue";

export type { OutboxMessage } from "./outbox-queue";

export const MAX_SEND_ATTEMPTS = 5;
/** 30 s, 60 s, 120 s, 240 s between attempts. */
export const retryDelaySeconds = (attempt: number) => Math.min(30 * 2 ** (attempt - 1), 3600);

export const PENDING_GRACE_MS = 2 * 60_000; // a pending row this old was never enqueued, or lost its message
export const SENDING_STUCK_MS = 10 * 60_000; // a row sending this long was claimed by a consumer that died
const DAY_MS = 86_400_000;
export const RETENTION = { outboxDays: 30, auditDays: 90, tokenDaysAfterExpiry: 7, usageDays: 90, deadKeyDays: 90, partnerCounterDays: 2 };

const ACTOR = "system:outbox";

interface Delivery {
  message: Message<OutboxMessage>;
  id: string;
  claimed: { payload: string; attempts: number } | undefined;
  tokenMade: boolean;
  recipient: { email: string; name: string | null; org_id: string | null; kind: OwnerEmailKind; key_prefix: string | null; url: string | null } | undefined;
  token: string;
  expiresAt: string;
}

/** A reset link lives an hour; an invite (a new owner's first password) 72 hours. */
export const RESET_TOKEN_TTL_MS = 60 * 60 * 1000;

/**
 * One message batch costs two D1 round trips whatever its size: one batch claims every row and makes its token,
 * one batch records every outcome. The emails in between go out concurrently.
 */
export async function consumeOutbox(batch: MessageBatch<OutboxMessage>, env: Bindings) {
  if (!publicBaseUrl(env)) {
    // No link to send: never a silent localhost link. The rows stay pending (the cron re-enqueues them once fixed).
    console.error(
      JSON.stringify({
        level: "error",
        request_id: newRequestId(),
        event: "outbox_paused",
        error: "PUBLIC_BASE_URL is not set: set it to this Worker's public https origin",
      }),
    );
    batch.retryAll({ delaySeconds: 300 });
    return;
  }
  const db = env.DB;
  const now = Date.now();
  const claimId = crypto.randomUUID();
  const expiresAt = isoNow(now + TOKEN_TTL_MS);
  const resetExpiresAt = isoNow(now + RESET_TOKEN_TTL_MS);
  const tokens = await Promise.all(batch.messages.map(() => newToken()));
  const statements = batch.messages.flatMap((message, i) => {
    const id = message.body?.outbox_id ?? "";
    const userOf = `(SELECT json_extract(payload, '$.user_id') FROM outbox WHERE id = ? AND claim_id = ?)`;
    const isReset = `(SELECT kind = 'password_reset' FROM outbox WHERE id = ? AND claim_id = ?)`;
    return [
      db
        .prepare(
          `UPDATE outbox SET status = 'sending', attempts = attempts + 1, claim_id = ?, updated_at = ? WHERE id = ? AND status = 'pending' RETURNING payload, attempts`,
        )
        .bind(claimId, isoNow(now), id),
      // A new link retires every older one of this user. An invite link only for an owner with no password yet (one
      // who has a password is sent to the console's sign-in instead); a reset link for anyone who asked.
      db
        .prepare(
          `UPDATE password_tokens SET used_at = ? WHERE user_id = ${userOf} AND used_at IS NULL AND (${isReset} OR EXISTS (SELECT 1 FROM users WHERE id = ${userOf} AND password_hash IS NULL))`,
        )
        .bind(isoNow(now), id, claimId, id, claimId, id, claimId),
      db
        .prepare(
          `INSERT INTO password_tokens (token_hash, user_id, created_at, expires_at, purpose)
           SELECT ?, id, ?, CASE WHEN ${isReset} THEN ? ELSE ? END, CASE WHEN ${isReset} THEN 'reset' ELSE 'invite' END
             FROM users WHERE id = ${userOf} AND (password_hash IS NULL OR ${isReset})`,
        )
        .bind(tokens[i].hash, isoNow(now), id, claimId, resetExpiresAt, expiresAt, id, claimId, id, claimId, id, claimId),
      db
        .prepare(
          `SELECT u.email, o.name, o.org_id, x.kind, json_extract(x.payload, '$.key_prefix') AS key_prefix, json_extract(x.payload, '$.url') AS url FROM outbox x
             JOIN users u ON u.id = json_extract(x.payload, '$.user_id')
             LEFT JOIN organizations o ON o.org_id = json_extract(x.payload, '$.org_id')
            WHERE x.id = ? AND x.claim_id = ?`,
        )
        .bind(id, claimId),
    ];
  });
  let results: D1Result[];
  try {
    results = await db.batch(statements);
  } catch (err) {
    // D1 trouble: nothing was claimed; the queue redelivers (and the cron would find the rows anyway).
    console.error(JSON.stringify({ level: "error", request_id: newRequestId(), queue: "outbox", error: String(err) }));
    for (const m of batch.messages) m.retry({ delaySeconds: retryDelaySeconds(m.attempts) });
    return;
  }
  const deliveries: Delivery[] = batch.messages.map((message, i) => ({
    message,
    id: message.body?.outbox_id ?? "",
    claimed: results[i * 4].results[0] as Delivery["claimed"],
    tokenMade: results[i * 4 + 2].meta.changes === 1,
    recipient: results[i * 4 + 3].results[0] as Delivery["recipient"],
    token: tokens[i].token,
    expiresAt: (results[i * 4 + 3].results[0] as Delivery["recipient"])?.kind === "password_reset" ? resetExpiresAt : expiresAt,
  }));

  const outcomes = await Promise.all(deliveries.map((d) => send(env, d)));
  const finishedAt = isoNow();
  const finish = outcomes.flatMap((o) => {
    if (!o) return [];
    const update = db.prepare(`UPDATE outbox SET status = ?, updated_at = ? WHERE id = ?`).bind(o.status, finishedAt, o.d.id);
    if (o.status === "pending") return [update];
    const event = o.status === "sent" ? "WELCOME_EMAIL_SENT" : "WELCOME_EMAIL_FAILED";
    const orgId = o.d.recipient?.org_id ?? (JSON.parse(o.d.claimed!.payload) as { org_id?: string | null }).org_id ?? null;
    const detail = [o.d.recipient && o.d.recipient.kind !== "welcome_email" ? `kind=${o.d.recipient.kind}` : null, o.detail].filter(Boolean).join(" ");
    return [update, auditStatement(db, { event_type: event, actor: ACTOR, org_id: orgId, request_id: `outbox_${o.d.id}`, detail }, finishedAt)];
  });
  if (finish.length) {
    try {
      await db.batch(finish);
    } catch {
      await db.batch(finish); // once more: the emails are out, so their rows should not stay in sending
    }
  }
  for (const [i, d] of deliveries.entries()) {
    const o = outcomes[i];
    if (o?.status === "pending") d.message.retry({ delaySeconds: retryDelaySeconds(d.claimed!.attempts) });
    else d.message.ack();
  }
}

type Outcome = { d: Delivery; status: "sent" | "failed" | "pending"; detail?: string } | null;

/** Sends one claimed row's email; null when there was nothing to claim (sent, failed, or being sent). */
async function send(env: Bindings, d: Delivery): Promise<Outcome> {
  if (!d.claimed) return null;
  if (!d.recipient) return { d, status: "failed", detail: "reason=no_recipient" };
  // A token link when one was made; else the owner already has a password: the console's sign-in page.
  const link = d.tokenMade ? `${publicBaseUrl(env)}/set-password#token=${d.token}` : `${publicBaseUrl(env)}/console/sign-in`;
  try {
    await env.EMAIL.send(
      toMessage({
        from: env.EMAIL_FROM,
        to: d.recipient.email,
        orgName: d.recipient.name,
        link,
        expiresAt: d.tokenMade ? d.expiresAt : null,
        kind: d.recipient.kind,
        exposed: d.recipient.key_prefix ? { keyPrefix: d.recipient.key_prefix, url: d.recipient.url } : undefined,
      }),
    );
    return { d, status: "sent", detail: `attempts=${d.claimed.attempts}` };
  } catch (err) {
    if (d.claimed.attempts >= MAX_SEND_ATTEMPTS) {
      return { d, status: "failed", detail: `reason=send_failed attempts=${d.claimed.attempts} error=${err instanceof Error ? err.name : "error"}` };
    }
    return { d, status: "pending" };
  }
}

/** PUBLIC_BASE_URL without a trailing slash, or null when unset. */
export const publicBaseUrl = (env: { PUBLIC_BASE_URL?: string }) => env.PUBLIC_BASE_URL?.trim().replace(/\/+$/, "") || null;

/** The cron: re-enqueue what was lost, then delete what is past retention. */
export async function sweepOutboxAndRetention(env: Bindings, now = Date.now()) {
  const db = env.DB;
  const at = (ms: number) => isoNow(ms);
  const [due] = await db.batch([
    db
      .prepare(`SELECT id FROM outbox WHERE (status = 'pending' AND updated_at < ?) OR (status = 'sending' AND updated_at < ?) ORDER BY created_at LIMIT 1000`)
      .bind(at(now - PENDING_GRACE_MS), at(now - SENDING_STUCK_MS)),
    db.prepare(`UPDATE outbox SET status = 'pending', updated_at = ? WHERE status = 'sending' AND updated_at < ?`).bind(at(now), at(now - SENDING_STUCK_MS)),
    db.prepare(`DELETE FROM idempotency_keys WHERE expires_at < ?`).bind(at(now)),
    db.prepare(`DELETE FROM outbox WHERE status IN ('sent', 'failed') AND updated_at < ?`).bind(at(now - RETENTION.outboxDays * DAY_MS)),
    db.prepare(`DELETE FROM audit_log WHERE created_at < ?`).bind(at(now - RETENTION.auditDays * DAY_MS)),
    db.prepare(`DELETE FROM password_tokens WHERE expires_at < ?`).bind(at(now - RETENTION.tokenDaysAfterExpiry * DAY_MS)),
    db.prepare(`DELETE FROM usage_daily WHERE day < ?`).bind(utcDay(now - RETENTION.usageDays * DAY_MS)),
    db.prepare(`DELETE FROM invite_resends WHERE sent_at < ?`).bind(at(now - DAY_MS)),
    // A key revoked, or past its window, for 90 days: its row goes (the audit log keeps its history as long).
    db.prepare(`DELETE FROM api_keys WHERE revoked_at < ?1 OR (revoked_at IS NULL AND expires_at < ?1)`).bind(at(now - RETENTION.deadKeyDays * DAY_MS)),
    db.prepare(`DELETE FROM partner_counters WHERE window_start < ?`).bind(at(now - RETENTION.partnerCounterDays * DAY_MS)),
  ]);
  const ids = (due.results as { id: string }[]).map((r) => r.id);
  for (let i = 0; i < ids.length; i += 100) await enqueueOutbox(env.OUTBOX_QUEUE, ids.slice(i, i + 100));
  return { reenqueued: ids.length };
}
