import { env } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { deliver, deliverWithEnv, eventFor, liveKeyHashes, org, ownerEmails, uniq } from "./helpers";

afterEach(() => vi.restoreAllMocks());
const newOrgId = () => `org_${uniq("pw").replace(/[^a-z0-9_]/g, "")}`;

describe("signature", () => {
  it("400 for unsigned, tampered, wrongly keyed or stale events; nothing is created", async () => {
    const unsignedOrg = newOrgId();
    const unsigned = await exports.default.fetch("https://p/stripe/webhook", {
      method: "POST",
      body: JSON.stringify(eventFor("checkout.session.completed", unsignedOrg)),
    });
    expect(unsigned.status).toBe(400);
    expect(await org(unsignedOrg)).toBeNull();
    const tampered = await deliver(eventFor("checkout.session.completed", newOrgId()), {
      tamper: (p) => p.replace('"tier":"standard"', '"tier":"enterprise"'),
    });
    expect(tampered.status).toBe(400);
    expect((await deliver(eventFor("checkout.session.completed", newOrgId()), { secret: "whsec_someone_else" })).status).toBe(400);
    const stale = await deliver(eventFor("checkout.session.completed", newOrgId()), { timestamp: Math.floor(Date.now() / 1000) - 301 });
    expect(stale.status).toBe(400);
    expect((await env.SERVICE_DB.prepare("SELECT COUNT(*) AS n FROM organizations").first<any>()).n).toBe(0);
  });

  it("2xx at once for an event it does not handle", async () => {
    const res = await deliver(eventFor("customer.created", newOrgId()));
    expect(res.status).toBe(200);
    expect(await res.json<any>()).toEqual({ received: true, ignored: "customer.created" });
  });
});

describe("checkout.session.completed", () => {
  it("creates the org once, keyless, with the customer as its owner (one welcome email), even when Stripe delivers it twice", async () => {
    const logged: string[] = [];
    vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => void logged.push(args.map(String).join(" ")));
    const orgId = newOrgId();
    const event = eventFor("checkout.session.completed", orgId);
    const first = await deliver(event);
    expect(first.status).toBe(200);
    expect(await first.json<any>()).toMatchObject({ received: true, action: "org_created", org_id: orgId });
    const again = await deliver(event);
    expect(again.status).toBe(200);
    expect(await again.json<any>()).toMatchObject({ action: "duplicate", detail: "org_created" });

    expect(await org(orgId)).toMatchObject({
      name: "Acme Corp",
      tier: "standard",
      domain: "general",
      status: "active",
      allowed_origins: '["https://acme.example.com","https://app.acme.example.com"]',
    });
    // Claim-to-mint: no key exists until the owner makes them in the console; the owner is the checkout's email.
    expect(await liveKeyHashes(orgId)).toEqual([]);
    expect(await ownerEmails(orgId)).toEqual([{ kind: "welcome_email", email: "billing@acme.example.com" }]);
    const idem = await env.SERVICE_DB.prepare("SELECT COUNT(*) AS n FROM idempotency_keys WHERE idempotency_key = ?")
      .bind(`checkout:${event.data.object.id}`)
      .first<any>();
    expect(idem.n).toBe(1);
    expect(logged.some((l) => l.includes("org_created"))).toBe(true);
    expect(logged.join("\n")).not.toMatch(/(ck_live_|sk_live_|kvqp_)[0-9A-Z]{10}/);
  });

  it("invalid metadata: the service's 422 is logged and acknowledged, nothing is created or sent", async () => {
    const orgId = newOrgId();
    const res = await deliver(eventFor("checkout.session.completed", orgId, (e) => (e.data.object.metadata.domain = "astrology")));
    expect(res.status).toBe(200);
    expect(await res.json<any>()).toMatchObject({ action: "org_create_refused", status: 422, detail: "VALIDATION_FAILED" });
    expect(await org(orgId)).toBeNull();
    expect(await ownerEmails(orgId)).toEqual([]);
  });
});

describe("service trouble", () => {
  it("service down or 5xx: the webhook answers 5xx so Stripe retries; the retry then succeeds", async () => {
    const orgId = newOrgId();
    const event = eventFor("checkout.session.completed", orgId);
    const down = {
      createOrg: async () => {
        throw new Error("connection refused");
      },
    };
    const failing = { createOrg: async () => ({ status: 500, body: { error: "INTERNAL" } }) };
    expect((await deliverWithEnv({ BILLING: down }, event)).status).toBe(503);
    expect((await deliverWithEnv({ BILLING: failing }, event)).status).toBe(503);
    expect(await org(orgId)).toBeNull();
    expect((await deliver(event)).status).toBe(200);
    expect((await org(orgId))?.status).toBe("active");
  });
});

describe("the billing lifecycle", () => {
  it("a cancellation before the checkout is acknowledged; a real one suspends once; a paid invoice restores, keyless, and tells the owner", async () => {
    const orgId = newOrgId();
    // Out of order: the cancellation arrives before any checkout is recorded. Acknowledged, nothing to act on.
    const early = await deliver(eventFor("customer.subscription.deleted", orgId));
    expect(early.status).toBe(200);
    expect(await early.json<any>()).toMatchObject({ action: "ignored" });

    expect((await deliver(eventFor("checkout.session.completed", orgId))).status).toBe(200);
    expect(await liveKeyHashes(orgId)).toEqual([]); // keyless until the owner claims its keys in the console

    // Dunning exhausted: suspends, once, however often Stripe delivers it.
    const failed = eventFor("invoice.payment_failed", orgId, (e) => (e.created -= 10));
    expect(await (await deliver(failed)).json<any>()).toMatchObject({ action: "billing_suspended" });
    expect(await (await deliver(failed)).json<any>()).toMatchObject({ action: "duplicate" });
    expect((await org(orgId))?.status).toBe("billing_suspended");
    expect(await liveKeyHashes(orgId)).toEqual([]);
    const suspends = await env.SERVICE_DB.prepare("SELECT COUNT(*) AS n FROM audit_log WHERE org_id = ? AND event_type = 'ADMIN_BILLING_SUSPEND'")
      .bind(orgId)
      .first<any>();
    expect(suspends.n).toBe(1);

    // The invoice is paid: the org is active again with no live key (the old ones stay revoked), and the owner is
    // told, once, to make new keys in the console; the redelivery changes and queues nothing.
    const paid = eventFor("invoice.paid", orgId);
    expect(await (await deliver(paid)).json<any>()).toMatchObject({ action: "billing_rotated" });
    expect(await (await deliver(paid)).json<any>()).toMatchObject({ action: "duplicate" });
    expect((await org(orgId))?.status).toBe("active");
    expect(await liveKeyHashes(orgId)).toEqual([]);
    expect((await ownerEmails(orgId)).map((e) => e.kind)).toEqual(["welcome_email", "access_restored"]);
  });

  it("invoice.paid for an active org changes nothing", async () => {
    const orgId = newOrgId();
    await deliver(eventFor("checkout.session.completed", orgId));
    const before = await liveKeyHashes(orgId);
    expect(await (await deliver(eventFor("invoice.paid", orgId))).json<any>()).toMatchObject({ action: "nothing_to_restore" });
    expect(await liveKeyHashes(orgId)).toEqual(before);
  });

  it("exhausted dunning suspends; a failed payment with retries left does not", async () => {
    const orgId = newOrgId();
    await deliver(eventFor("checkout.session.completed", orgId));
    const retrying = eventFor("invoice.payment_failed", orgId, (e) => (e.data.object.next_payment_attempt = Math.floor(Date.now() / 1000) + 86400));
    expect(await (await deliver(retrying)).json<any>()).toMatchObject({ action: "dunning_continues" });
    expect((await org(orgId))?.status).toBe("active");
    expect(await (await deliver(eventFor("invoice.payment_failed", orgId))).json<any>()).toMatchObject({ action: "billing_suspended" });
    expect((await org(orgId))?.status).toBe("billing_suspended");
  });
});
