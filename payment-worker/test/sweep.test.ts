import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../src/index";

describe("usage cron", () => {
  it("pages through every active org and billing-suspends exactly those at or over their limit, once", async () => {
    const now = new Date().toISOString();
    const today = now.slice(0, 10);
    // 1,200 active orgs (3 pages of 500); every 40th is at its starter limit, plus one revoked org over it.
    await env.SERVICE_DB.batch([
      env.SERVICE_DB.prepare(
        `INSERT INTO organizations (org_id, identifier, slug, name, domain, tier, created_at, updated_at)
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1200)
         SELECT 'org_sweep_' || i, lower(hex(randomblob(16))), 'org_sweep_' || i, 'Sweep ' || i, 'general', 'starter', ?, ? FROM n`,
      ).bind(now, now),
      env.SERVICE_DB.prepare(
        `INSERT INTO usage_daily (org_id, day, count) SELECT org_id, ?, CASE WHEN CAST(substr(org_id, 11) AS INTEGER) % 40 = 0 THEN 10000 ELSE 9999 END FROM organizations WHERE org_id LIKE 'org_sweep_%'`,
      ).bind(today),
      env.SERVICE_DB.prepare(
        `INSERT INTO organizations (org_id, identifier, slug, name, domain, tier, status, created_at, updated_at) VALUES ('org_sweep_revoked', 'sweep-revoked', 'org_sweep_revoked', 'R', 'general', 'starter', 'revoked', ?, ?)`,
      ).bind(now, now),
      env.SERVICE_DB.prepare(`INSERT INTO usage_daily (org_id, day, count) VALUES ('org_sweep_revoked', ?, 50000)`).bind(today),
    ]);
    const run = async () => {
      const ctx = createExecutionContext();
      await worker.scheduled(createScheduledController({ cron: "*/5 * * * *" }), env, ctx);
      await waitOnExecutionContext(ctx);
    };
    await run();
    const suspended = await env.SERVICE_DB.prepare("SELECT org_id FROM organizations WHERE status = 'billing_suspended' ORDER BY org_id").all<{
      org_id: string;
    }>();
    expect(suspended.results).toHaveLength(30);
    expect(suspended.results.every((r) => Number(r.org_id.slice(10)) % 40 === 0)).toBe(true);
    expect((await env.SERVICE_DB.prepare("SELECT status FROM organizations WHERE org_id = 'org_sweep_revoked'").first<any>()).status).toBe("revoked");
    await run(); // a second sweep finds none active over the limit
    const audits = await env.SERVICE_DB.prepare(
      "SELECT COUNT(*) AS n FROM audit_log WHERE event_type = 'ADMIN_BILLING_SUSPEND' AND actor = 'master:BILLING_SUSPEND'",
    ).first<any>();
    expect(audits.n).toBe(30);
  });

  it("an org restored while still over its limit is suspended again by the next sweep, not answered by the earlier replay", async () => {
    const now = new Date().toISOString();
    await env.SERVICE_DB.batch([
      env.SERVICE_DB.prepare(
        `INSERT INTO organizations (org_id, identifier, slug, name, domain, tier, created_at, updated_at) VALUES ('org_sweep_again', 'sweep-again', 'org_sweep_again', 'A', 'general', 'starter', ?, ?)`,
      ).bind(now, now),
      env.SERVICE_DB.prepare(`INSERT INTO usage_daily (org_id, day, count) VALUES ('org_sweep_again', ?, 20000)`).bind(now.slice(0, 10)),
    ]);
    const run = async () => {
      const ctx = createExecutionContext();
      await worker.scheduled(createScheduledController({ cron: "*/5 * * * *" }), env, ctx);
      await waitOnExecutionContext(ctx);
    };
    const status = async () =>
      (await env.SERVICE_DB.prepare("SELECT status FROM organizations WHERE org_id = 'org_sweep_again'").first<{ status: string }>())!.status;
    await run();
    expect(await status()).toBe("billing_suspended");
    await new Promise((r) => setTimeout(r, 5)); // status_changed_at has millisecond precision
    expect((await env.BILLING.billingRotate("evt_paid_again", "org_sweep_again")).status).toBe(200); // a paid invoice
    expect(await status()).toBe("active");
    await run();
    expect(await status()).toBe("billing_suspended");
  });
});
