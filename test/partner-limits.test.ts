// Trust, third pass, on the partner side: no live keys for an org that is not active, a daily quota of welcome
// emails, EMAIL_TAKEN audited and limited, no partner-chosen link in an email. Plus the failure aggregator's memory
// cap and the retention of dead key rows.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { pendingFailureCount, recordFailure } from "../src/lib/data/audit";
import { renderWelcomeEmail } from "../src/features/onboarding/email";
import { sweepOutboxAndRetention } from "../src/features/onboarding/outbox";
import { EMAIL_TAKEN_PER_HOUR } from "../src/features/partner-orgs/quota";
import { act, call, callWithEnv, countRows, createPartner, PARTNER_ORGS, provision, provisionBody, uniq } from "./helpers";

const rotateKeys = (partnerKey: string, identifier: string, headers: Record<string, string> = {}) =>
  call(`${PARTNER_ORGS}/${identifier}/rotate-keys/`, { method: "POST", headers: { "x-kelviq-partner-key": partnerKey, ...headers } });

async function provisioned(partnerKey: string) {
  const res = await provision(partnerKey, provisionBody());
  expect(res.status).toBe(201);
  const p = await res.json<any>();
  const row = await env.DB.prepare("SELECT org_id FROM organizations WHERE identifier = ?").bind(p.organizationIdentifier).first<{ org_id: string }>();
  return { ...p, org_id: row!.org_id };
}

describe("partner rotate-keys needs an active org", () => {
  for (const action of ["billing-suspend", "force-revoke", "suspend"] as const) {
    it(`after ${action}: 409 ORG_STATE_CONFLICT, no key minted, and its reads show no current key`, async () => {
      const partner = await createPartner();
      const p = await provisioned(partner.partner_key);
      expect((await act(action, p.org_id)).status).toBe(200);
      const keysBefore = await countRows("api_keys", "org_id = ?", p.org_id);
      const idem = uniq("rk");
      const res = await rotateKeys(partner.partner_key, p.organizationIdentifier, { "idempotency-key": idem });
      expect(res.status).toBe(409);
      expect(await res.json<any>()).toMatchObject({ error: "ORG_STATE_CONFLICT", request_id: expect.stringMatching(/^req_/) });
      expect(await countRows("api_keys", "org_id = ?", p.org_id)).toBe(keysBefore);
      // The refusal is the key's first result: a replay returns it.
      const replay = await rotateKeys(partner.partner_key, p.organizationIdentifier, { "idempotency-key": idem });
      expect(replay.status).toBe(409);
      expect(replay.headers.get("idempotent-replayed")).toBe("true");
      // Without an Idempotency-Key, the same.
      expect((await rotateKeys(partner.partner_key, p.organizationIdentifier)).status).toBe(409);
    });
  }

  it("an active org still rotates", async () => {
    const partner = await createPartner();
    const p = await provisioned(partner.partner_key);
    const res = await rotateKeys(partner.partner_key, p.organizationIdentifier);
    expect(res.status).toBe(200);
    expect((await res.json<any>()).clientKey).toMatch(/^ck_live_/);
  });
});

describe("a partner's daily quota of welcome emails (PARTNER_DAILY_PROVISIONS)", () => {
  it("past the cap: 429 with Retry-After until the UTC day ends, nothing written; replays are not counted", async () => {
    const partner = await createPartner();
    const capped = { PARTNER_DAILY_PROVISIONS: "3" } as Record<string, unknown>;
    const send = (body: unknown, idem?: string) =>
      callWithEnv(capped, `${PARTNER_ORGS}/`, {
        method: "POST",
        headers: { "x-kelviq-partner-key": partner.partner_key, ...(idem ? { "idempotency-key": idem } : {}) },
        json: body,
      });
    const first = provisionBody();
    const idem = uniq("pv");
    expect((await send(first, idem)).status).toBe(201);
    expect((await send(provisionBody())).status).toBe(201);
    expect((await send(provisionBody())).status).toBe(201);
    expect((await send(first, idem)).headers.get("idempotent-replayed")).toBe("true"); // a replay sends nothing
    const orgs = await countRows("organizations", "partner_id = ?", partner.partner_id);
    const over = await send(provisionBody());
    expect(over.status).toBe(429);
    expect(await over.json<any>()).toMatchObject({ error: "RATE_LIMITED" });
    const retryAfter = Number(over.headers.get("retry-after"));
    const midnight = new Date();
    midnight.setUTCHours(24, 0, 0, 0);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(Math.ceil((midnight.getTime() - Date.now()) / 1000) + 1);
    expect(await countRows("organizations", "partner_id = ?", partner.partner_id)).toBe(orgs);
    expect((await countRows("outbox", "1 = 1")) >= 3).toBe(true);
    expect(await countRows("audit_log", "event_type = 'PARTNER_QUOTA_EXCEEDED' AND actor = ?", `partner:${partner.partner_id}`)).toBe(1);
    // Another partner has its own quota.
    const other = await createPartner();
    expect(
      (await callWithEnv(capped, `${PARTNER_ORGS}/`, { method: "POST", headers: { "x-kelviq-partner-key": other.partner_key }, json: provisionBody() })).status,
    ).toBe(201);
  });

  it("a resent invite counts too", async () => {
    const partner = await createPartner();
    const capped = { PARTNER_DAILY_PROVISIONS: "1" } as Record<string, unknown>;
    const res = await callWithEnv(capped, `${PARTNER_ORGS}/`, {
      method: "POST",
      headers: { "x-kelviq-partner-key": partner.partner_key },
      json: provisionBody(),
    });
    const p = await res.json<any>();
    const resend = await callWithEnv(capped, `${PARTNER_ORGS}/${p.organizationIdentifier}/resend-invite/`, {
      method: "POST",
      headers: { "x-kelviq-partner-key": partner.partner_key },
    });
    expect(resend.status).toBe(429);
    expect(Number(resend.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  });
});

describe("409 EMAIL_TAKEN is audited and limited per hour", () => {
  it(`each answer is an audit row with the partner; past ${EMAIL_TAKEN_PER_HOUR} an hour, 429 and nothing revealed`, async () => {
    const a = await createPartner("A");
    const b = await createPartner("B");
    const email = `${uniq("victim")}@example.com`;
    expect((await provision(a.partner_key, provisionBody({ email }))).status).toBe(201);
    for (let i = 0; i < EMAIL_TAKEN_PER_HOUR; i++) {
      const res = await provision(b.partner_key, provisionBody({ email: i % 2 ? email.toUpperCase() : email }));
      expect(res.status).toBe(409);
      expect((await res.json<any>()).error).toBe("EMAIL_TAKEN");
    }
    expect(await countRows("audit_log", "event_type = 'PROVISION_EMAIL_TAKEN' AND actor = ?", `partner:${b.partner_id}`)).toBe(EMAIL_TAKEN_PER_HOUR);
    const over = await provision(b.partner_key, provisionBody({ email }));
    expect(over.status).toBe(429);
    expect(Number(over.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    // A fresh address past the limit still provisions: only the answer that reveals is limited.
    expect((await provision(b.partner_key, provisionBody())).status).toBe(201);
  });
});

describe("partner-chosen text in an email never becomes a link", () => {
  it("domains, URLs and addresses in the org name are bracketed; the only link is ours", () => {
    const link = "https://keys.example.com/set-password#token=abc";
    const mail = renderWelcomeEmail({
      from: "a@b.example",
      to: "o@example.com",
      orgName: "Acme — log in at https://evil.example/login or www.evil.example, help@evil.example. Inc.",
      link,
      expiresAt: new Date().toISOString(),
    });
    for (const part of [mail.text, mail.html]) {
      expect(part).not.toMatch(/evil\.example/);
      expect(part).not.toContain("https://evil");
      expect(part).not.toMatch(/help@evil/);
      expect(part.match(/https?:\/\/[^\s"<]+/g)).toEqual([link]);
    }
    expect(mail.text).toContain("evil[.]example");
    expect(mail.text).toContain("Inc."); // a dot that ends a word stays
  });
});

describe("the failure aggregator's memory cap holds within a minute", () => {
  it("distinct subjects past the cap are counted into one overflow row; memory stays bounded", async () => {
    const ctx = createExecutionContext();
    const defer = (p: Promise<unknown>) => ctx.waitUntil(p);
    const now = Date.parse("2026-12-01T10:00:30.000Z");
    const requestId = uniq("req");
    for (let i = 0; i < 30; i++) {
      await recordFailure(
        env.DB,
        defer,
        { event_type: "AUTH_FAIL_PARTNER_KEY", actor: "anonymous", request_id: requestId, ip: `203.0.113.${i}` },
        `cap-test-${i}`,
        now,
        10,
      );
    }
    expect(pendingFailureCount()).toBeLessThanOrEqual(11);
    await waitOnExecutionContext(ctx);
    const rows = await env.DB.prepare("SELECT count, aggregate_key FROM audit_log WHERE request_id = ?")
      .bind(requestId)
      .all<{ count: number; aggregate_key: string }>();
    expect(rows.results.reduce((n, r) => n + r.count, 0)).toBe(30); // every failure counted
    expect(rows.results.filter((r) => r.aggregate_key.endsWith("|*"))).toHaveLength(1);
  });
});

describe("retention of dead key rows", () => {
  it("a key revoked or expired more than 90 days ago is deleted by the cron; newer ones and live ones stay", async () => {
    const partner = await createPartner();
    const p = await provisioned(partner.partner_key);
    const day = 86_400_000;
    const at = (ms: number) => new Date(Date.now() - ms).toISOString();
    const insert = (revoked: string | null, expires: string | null) =>
      env.DB.prepare(
        "INSERT INTO api_keys (key_hash, pepper_id, key_type, prefix, org_id, revoked_at, expires_at, created_at) VALUES (?, 'p', 'ck_live', 'OLDKEY00', ?, ?, ?, ?)",
      )
        .bind(uniq("hash"), p.org_id, revoked, expires, at(200 * day))
        .run();
    await insert(at(91 * day), null);
    await insert(null, at(91 * day));
    await insert(at(10 * day), null);
    expect(await countRows("api_keys", "org_id = ?", p.org_id)).toBe(5);
    await sweepOutboxAndRetention(env as never);
    expect(await countRows("api_keys", "org_id = ?", p.org_id)).toBe(3); // the two live keys and the recent revoke
  });
});
