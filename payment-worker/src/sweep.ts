// The usage cron: page through every active org's usage and billing-suspend those over their tier limit. The
// Idempotency-Key names the org and the period's first day, so repeated sweeps within a period suspend once.
import type { PaymentEnv } from "./env";
import { callOrgService } from "./org-service";

export async function sweepUsage(env: PaymentEnv) {
  let cursor: string | null = null;
  let pages = 0;
  const suspended: string[] = [];
  const refused: string[] = [];
  do {
    const qs: string = `?threshold_crossed=true&limit=500${cursor ? `&cursor=${cursor}` : ""}`;
    const page = await callOrgService(env, "ORG_USAGE_READ", "GET", `/v1/admin/org/usage${qs}`);
    if (page.status !== 200) throw new Error(`usage page answered ${page.status}`);
    pages++;
    for (const org of page.body.results as { org_id: string; period_start: string }[]) {
      const answer = await callOrgService(env, "BILLING_SUSPEND", "POST", `/v1/admin/billing/org/${org.org_id}/suspend`, {
        idempotencyKey: `usage-threshold:${org.org_id}:${org.period_start.slice(0, 10)}`,
      });
      (answer.status === 200 ? suspended : refused).push(org.org_id);
    }
    cursor = page.body.next;
  } while (cursor);
  console.log(JSON.stringify({ worker: "payment-worker", action: "usage_sweep", pages, suspended: suspended.length, refused: refused.length }));
  return { pages, suspended, refused };
}
