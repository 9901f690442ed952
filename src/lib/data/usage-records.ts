// Usage records: verified requests per org per day, and when each key was last used, without a D1 write per
// request. Both gather in this isolate for FLUSH_MS, then go to the usage queue in one sendBatch; its consumer
// (src/verify/usage.ts) adds them into D1. The request that schedules a flush keeps it alive with waitUntil, and a new
// flush is scheduled for anything recorded after a flush started, so everything is sent before the isolate may go
// away. A failed send puts its records back for the next flush.
import { isoNow } from "../util/time";
import { utcDay } from "../util/usage-period";

export const FLUSH_MS = 250;
const MAX_BATCH = 100; // Queue.sendBatch limit
const MAX_REPORTED = 50_000;

/** Verified interactions of an org on a UTC day. */
export interface UsageCount {
  kind?: "usage";
  org_id: string;
  day: string;
  count: number;
}

/** A key was used in this minute (`at` is the minute, ISO with :00.000). */
export interface KeyUse {
  kind: "key_used";
  key_id: number;
  at: string;
}

export type UsageMessage = UsageCount | KeyUse;

const pending = new Map<string, UsageMessage>();
/** The minute last sent for each key: a key used all minute long costs one message per minute per isolate. */
const reported = new Map<number, string>();
let scheduled = false;

/** What the pipeline needs of a request's context: to keep its flush alive. */
type Defer = { waitUntil(promise: Promise<unknown>): void };

function schedule(queue: Queue, ctx: Defer) {
  if (scheduled) return;
  scheduled = true;
  ctx.waitUntil(new Promise((resolve) => setTimeout(resolve, FLUSH_MS)).then(() => flushUsage(queue)));
}

export function countInteraction(queue: Queue, ctx: Defer, orgId: string, now = Date.now()) {
  const day = utcDay(now);
  const key = `${orgId}|${day}`;
  const entry = pending.get(key) as UsageCount | undefined;
  if (entry) entry.count++;
  else pending.set(key, { org_id: orgId, day, count: 1 });
  schedule(queue, ctx);
}

/** Records that a key authenticated or verified now (minute precision); sent at most once per minute per key. */
export function reportKeyUse(queue: Queue, ctx: Defer, keyId: number, now = Date.now()) {
  const at = `${isoNow(now).slice(0, 16)}:00.000Z`;
  if (reported.get(keyId) === at) return;
  if (reported.size >= MAX_REPORTED) reported.clear();
  reported.set(keyId, at);
  pending.set(`key|${keyId}`, { kind: "key_used", key_id: keyId, at });
  schedule(queue, ctx);
}

export async function flushUsage(queue: Queue) {
  scheduled = false; // records from now on schedule the next flush
  const messages = [...pending.entries()];
  pending.clear();
  for (let i = 0; i < messages.length; i += MAX_BATCH) {
    const chunk = messages.slice(i, i + MAX_BATCH);
    try {
      await queue.sendBatch(chunk.map(([, body]) => ({ body })));
    } catch (err) {
      for (const [key, m] of messages.slice(i)) {
        const entry = pending.get(key);
        if (entry && m.kind !== "key_used" && entry.kind !== "key_used") entry.count += m.count;
        else if (!entry) pending.set(key, m);
      }
      throw err;
    }
  }
}
