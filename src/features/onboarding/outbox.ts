// The transactional outbox. Provisioning writes a row in its batch and, once that commits, sends the row's id to
// the outbox queue. The consumer claims the row (pending → sending, one UPDATE … RETURNING: a redelivered or
// duplicate message finds nothing to claim and never sends twice), makes a fresh set-password token, sends the
// email, and marks the row sent. A failed send goes back to pending and is retried with backoff; after
// MAX_SEND_ATTEMPTS the row is failed and audited. The cron re-enqueues rows never enqueued (a crash between
// commit and enqueue) or stuck in sending (a crash mid-send), and deletes what is past retention.
import { EmailMessage } from "cloudflare:email";
import { auditStatement } from "../../lib/audit";
import type { Bindings } from "../../lib/context";
import { isoNow } from "../../lib/time";
import { utcDay } from "../../lib/usage-period";
import { newToken, TOKEN_TTL_MS } from "./crypto";
import { addressOf, toMime } from "./email";
import { enqueueOutbox, type OutboxMessage } from "./outbox-queue";

export type { OutboxMessage } from "./outbox-queue";

export const MAX_SEND_ATTEMPTS = 5;
/** 30 s, 60 s, 120 s, 240 s between attempts. */
export const retryDelaySeconds = (attempt: number) => Math.min(30 * 2 ** (attempt - 1), 3600);

export const PENDING_GRACE_MS = 2 * 60_000; // a pending row this old was never enqueued, or lost its message
export const SENDING_STUCK_MS = 10 * 60_000; // a row sending this long was claimed by a consumer that died
const DAY_MS = 86_400_000;
export const RETENTION = { outboxDays: 30, auditDays: 90, tokenDaysAfterExpiry: 7, usageDays: 90 };

const ACTOR = "system:outbox";

interface Claimed {
  payload: string;
  attempts: number;
}

async function deliver(env: Bindings, message: Message<OutboxMessage>) {
  const db = env.DB;
  const id = message.body?.outbox_id;
  const claimed = await db
    .prepare(`UPDATE outbox SET status = 'sending', attempts = attempts + 1, updated_at = ? WHERE id = ? AND status = 'pending' RETURNING payload, attempts`)
    .bind(isoNow(), id ?? "")
    .first<Claimed>();
  if (!claimed) return message.ack(); // already sent, failed, or being sent: nothing to do

  const { user_id: userId, org_id: orgId } = JSON.parse(claimed.payload) as { user_id: number; org_id: string };
  const { token, hash } = await newToken();
  const now = Date.now();
  const expiresAt = isoNow(now + TOKEN_TTL_MS);
  // A new link retires every older one of this user; only for an owner with no password yet.
  const [, inserted, who] = await db.batch([
    db.prepare(`UPDATE password_tokens SET used_at = ? WHERE user_id = ? AND used_at IS NULL`).bind(isoNow(now), userId),
    db
      .prepare(`INSERT INTO password_tokens (token_hash, user_id, created_at, expires_at) SELECT ?, id, ?, ? FROM users WHERE id = ? AND password_hash IS NULL`)
      .bind(hash, isoNow(now), expiresAt, userId),
    db.prepare(`SELECT u.email, o.name FROM users u, organizations o WHERE u.id = ? AND o.org_id = ?`).bind(userId, orgId),
  ]);
  const recipient = who.results[0] as { email: string; name: string } | undefined;
  if (!inserted.meta.changes || !recipient) {
    return finish(env, message, id!, orgId, "failed", "WELCOME_EMAIL_FAILED", recipient ? "reason=password_already_set" : "reason=no_recipient");
  }

  const link = `${env.PUBLIC_BASE_URL.replace(/\/+$/, "")}/set-password#token=${token}`;
  try {
    const raw = toMime({ from: env.EMAIL_FROM, to: recipient.email, orgName: recipient.name, link, expiresAt }, id!);
    await env.EMAIL.send(new EmailMessage(addressOf(env.EMAIL_FROM), recipient.email, raw));
  } catch (err) {
    const reason = err instanceof Error ? err.name : "error";
    if (claimed.attempts >= MAX_SEND_ATTEMPTS) {
      return finish(env, message, id!, orgId, "failed", "WELCOME_EMAIL_FAILED", `reason=send_failed attempts=${claimed.attempts} error=${reason}`);
    }
    await db.prepare(`UPDATE outbox SET status = 'pending', updated_at = ? WHERE id = ?`).bind(isoNow(), id).run();
    return message.retry({ delaySeconds: retryDelaySeconds(claimed.attempts) });
  }
  return finish(env, message, id!, orgId, "sent", "WELCOME_EMAIL_SENT", `attempts=${claimed.attempts}`);
}

async function finish(
  env: Bindings,
  message: Message<OutboxMessage>,
  id: string,
  orgId: string,
  status: "sent" | "failed",
  event: "WELCOME_EMAIL_SENT" | "WELCOME_EMAIL_FAILED",
  detail: string,
) {
  const now = isoNow();
  await env.DB.batch([
    env.DB.prepare(`UPDATE outbox SET status = ?, updated_at = ? WHERE id = ?`).bind(status, now, id),
    auditStatement(env.DB, { event_type: event, actor: ACTOR, org_id: orgId, request_id: `outbox_${id}`, detail }, now),
  ]);
  message.ack();
}

export async function consumeOutbox(batch: MessageBatch<OutboxMessage>, env: Bindings) {
  for (const message of batch.messages) {
    try {
      await deliver(env, message);
    } catch (err) {
      // D1 trouble: leave the row for the next delivery (or the cron), and let the queue retry the message.
      console.error(JSON.stringify({ level: "error", outbox_id: message.body?.outbox_id, error: String(err) }));
      message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
    }
  }
}

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
  ]);
  const ids = (due.results as { id: string }[]).map((r) => r.id);
  for (let i = 0; i < ids.length; i += 100) await enqueueOutbox(env.OUTBOX_QUEUE, ids.slice(i, i + 100));
  return { reenqueued: ids.length };
}
