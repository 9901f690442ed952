// Counting verified requests without a D1 write per request: counts gather in this isolate for FLUSH_MS, then
// go to the usage queue in one sendBatch; its consumer adds them into usage_daily. The request that schedules a
// flush keeps it alive with waitUntil, and a new flush is scheduled for anything counted after a flush started,
// so every count is sent before the isolate may go away. A failed send puts its counts back for the next flush.
import { utcDay } from "../lib/usage-period";

export const FLUSH_MS = 250;
const MAX_BATCH = 100; // Queue.sendBatch limit

export interface UsageMessage {
  org_id: string;
  day: string;
  count: number;
}

const pending = new Map<string, UsageMessage>();
let scheduled = false;

export function countInteraction(queue: Queue, ctx: ExecutionContext, orgId: string, now = Date.now()) {
  const day = utcDay(now);
  const key = `${orgId}|${day}`;
  const entry = pending.get(key);
  if (entry) entry.count++;
  else pending.set(key, { org_id: orgId, day, count: 1 });
  if (!scheduled) {
    scheduled = true;
    ctx.waitUntil(new Promise((resolve) => setTimeout(resolve, FLUSH_MS)).then(() => flushUsage(queue)));
  }
}

export async function flushUsage(queue: Queue) {
  scheduled = false; // counts from now on schedule the next flush
  const messages = [...pending.values()];
  pending.clear();
  for (let i = 0; i < messages.length; i += MAX_BATCH) {
    const chunk = messages.slice(i, i + MAX_BATCH);
    try {
      await queue.sendBatch(chunk.map((body) => ({ body })));
    } catch (err) {
      for (const m of messages.slice(i)) {
        const key = `${m.org_id}|${m.day}`;
        const entry = pending.get(key);
        if (entry) entry.count += m.count;
        else pending.set(key, m);
      }
      throw err;
    }
  }
}

/** Queue consumer: one D1 batch of upserts per message batch; a failure retries the whole batch. */
export async function consumeUsage(batch: MessageBatch<UsageMessage>, db: D1Database) {
  const totals = new Map<string, UsageMessage>();
  for (const { body } of batch.messages) {
    const key = `${body.org_id}|${body.day}`;
    const t = totals.get(key);
    if (t) t.count += body.count;
    else totals.set(key, { ...body });
  }
  if (totals.size) {
    await db.batch(
      [...totals.values()].map((t) =>
        db
          .prepare(
            `INSERT INTO usage_daily (org_id, day, count) VALUES (?, ?, ?)
             ON CONFLICT (org_id, day) DO UPDATE SET count = count + excluded.count`,
          )
          .bind(t.org_id, t.day, t.count),
      ),
    );
  }
  batch.ackAll();
}
