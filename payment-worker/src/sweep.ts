// The cron: page through every active org's usage and billing-suspend those over their tier limit (the
// Idempotency-Key names the org, the period's first day and its last status change, so repeated sweeps suspend once
// per episode), then forget processed Stripe event ids past their retention.
import { callBilling } from "./billing";
import type { PaymentEnv } from "./env";
import { log, newRequestId } from "./log";
import { deleteOldEvents } from "./state";

export async function sweepUsage(env: PaymentEnv) {
  let cursor: string | undefined;
  let pages = 0;
  const suspended: string[] = [];
  const refused: string[] = [];
  do {
    const page = await callBilling("usage_list", (b) => b.listUsage({ threshold_crossed: true, limit: 500, cursor }), env);
    if (page.status !== 200) throw new Error(`usage page answered ${page.status}`);
    pages++;
    for (const org of page.body.results as { org_id: string; period_start: string; status_changed_at: string | null }[]) {
      // Once per org, period and status episode: an org restored (by a paid invoice) while still over its limit is
      // a new episode, so the next sweep suspends it again instead of replaying its earlier suspension.
      const key = `usage-threshold:${org.org_id}:${org.period_start.slice(0, 10)}:${org.status_changed_at ?? "created"}`;
      const answer = await callBilling("billing_suspend", (b) => b.billingSuspend(key, org.org_id, "usage"), env);
      (answer.status === 200 ? suspended : refused).push(org.org_id);
    }
    cursor = page.body.next ?? undefined;
  } while (cursor);
  await deleteOldEvents(env.DB);
  log({ level: "info", request_id: newRequestId(), action: "usage_sweep", pages, suspended: suspended.length, refused: refused.length });
  return { pages, suspended, refused };
}
