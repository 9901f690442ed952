// Stripe's real delivery: out of order, more than once (for up to 3 days, sometimes concurrently), disputes without
// our metadata, and signed events that name an org they do not own. Every event goes through the real binding.
import { env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import config from "../wrangler.toml?raw";
import { deliver, deliverWithEnv, eventFor, liveKeyHashes, org, ownerEmails, sign, stripeIdsOf, uniq } from "./helpers";
import { exports } from "cloudflare:workers";

afterEach(() => vi.restoreAllMocks());
const newOrgId = () => `org_${uniq("dl").replace(/[^a-z0-9_]/g, "")}`;
const T0 = Math.floor(Date.now() / 1000) - 3600;
const at = (created: number) => (e: any) => (e.created = created);
const action = async (res: Response) => (await res.json<any>()).action;

async function checkedOut(orgId: string) {
  expect(await action(await deliver(eventFor("checkout.session.completed", orgId, at(T0))))).toBe("org_created");
}

describe("order: an older event never undoes a newer one", () => {
  it("invoice.paid created before a cancellation, delivered after it: the org stays cancelled and suspended, no key sent", async () => {
    const orgId = newOrgId();
    await checkedOut(orgId);
    expect(await action(await deliver(eventFor("customer.subscription.deleted", orgId, at(T0 + 200))))).toBe("billing_suspended");
    const late = await deliver(eventFor("invoice.paid", orgId, at(T0 + 100)));
    expect(await action(late)).toBe("ignored_cancelled");
    expect((await org(orgId))?.status).toBe("billing_suspended");
    expect((await ownerEmails(orgId)).map((e) => e.kind)).toEqual(["welcome_email"]); // no restore, no "access restored"
    // Even an invoice paid after the cancellation does not bring a cancelled subscription back.
    expect(await action(await deliver(eventFor("invoice.paid", orgId, at(T0 + 300))))).toBe("ignored_cancelled");
    expect((await org(orgId))?.status).toBe("billing_suspended");
  });

  it("exhausted dunning created before an invoice.paid, delivered after it: the paid-up org stays active with its keys", async () => {
    const orgId = newOrgId();
    await checkedOut(orgId);
    const keys = await liveKeyHashes(orgId);
    expect(await action(await deliver(eventFor("invoice.paid", orgId, at(T0 + 200))))).toBe("nothing_to_restore");
    expect(await action(await deliver(eventFor("invoice.payment_failed", orgId, at(T0 + 100))))).toBe("ignored_out_of_order");
    expect((await org(orgId))?.status).toBe("active");
    expect(await liveKeyHashes(orgId)).toEqual(keys);
  });

  it("equal created seconds: the suspending event wins, whichever arrives first", async () => {
    for (const order of [
      ["invoice.paid", "invoice.payment_failed"],
      ["invoice.payment_failed", "invoice.paid"],
    ] as const) {
      const orgId = newOrgId();
      await checkedOut(orgId);
      for (const type of order) await deliver(eventFor(type, orgId, at(T0 + 500)));
      expect((await org(orgId))?.status, order.join(" then ")).toBe("billing_suspended");
    }
  });
});

describe("ownership: a signed event proves only that Stripe sent it", () => {
  it("events of another customer for our org are acknowledged as a mismatch and change nothing", async () => {
    const orgId = newOrgId();
    await checkedOut(orgId);
    const logged: string[] = [];
    vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => void logged.push(args.map(String).join(" ")));
    const foreign = (type: "invoice.payment_failed" | "customer.subscription.deleted") =>
      eventFor(type, orgId, (e) => {
        e.created = T0 + 100;
        e.data.object.customer = "cus_someone_else";
      });
    for (const type of ["invoice.payment_failed", "customer.subscription.deleted"] as const) {
      const res = await deliver(foreign(type));
      expect(res.status).toBe(200);
      expect(await action(res)).toBe("ownership_mismatch");
    }
    // The right customer but another subscription is not ours either.
    const otherSub = eventFor("invoice.payment_failed", orgId, (e) => (e.data.object.parent.subscription_details.subscription = "sub_other"));
    expect(await action(await deliver(otherSub))).toBe("ownership_mismatch");
    expect((await org(orgId))?.status).toBe("active");
    expect(logged.some((l) => l.includes("ownership_mismatch") && l.includes("cus_someone_else"))).toBe(true);
  });

  it("the owner is the address recorded at checkout, never an invoice's customer_email", async () => {
    const orgId = newOrgId();
    await checkedOut(orgId);
    await deliver(eventFor("invoice.payment_failed", orgId, at(T0 + 100)));
    expect((await org(orgId))?.status).toBe("billing_suspended");
    const paid = eventFor("invoice.paid", orgId, (e) => {
      e.created = T0 + 200;
      e.data.object.customer_email = "attacker@evil.example.com";
    });
    expect(await action(await deliver(paid))).toBe("billing_rotated");
    expect(await ownerEmails(orgId)).toEqual([
      { kind: "welcome_email", email: "billing@acme.example.com" },
      { kind: "access_restored", email: "billing@acme.example.com" },
    ]);
  });
});

describe("disputes", () => {
  it("a real-shaped dispute (a charge id, no metadata) is resolved through the charges seen on paid invoices", async () => {
    const orgId = newOrgId();
    await checkedOut(orgId);
    await deliver(eventFor("invoice.paid", orgId, at(T0 + 100))); // records the invoice's charge and payment intent
    const dispute = eventFor("charge.dispute.created", orgId, at(T0 + 200));
    expect(dispute.data.object.metadata).toEqual({});
    expect(dispute.data.object.charge).toBe(stripeIdsOf(orgId).charge);
    expect(await action(await deliver(dispute))).toBe("billing_suspended");
    expect((await org(orgId))?.status).toBe("billing_suspended");
  });

  it("a dispute on a payment intent alone resolves too; an unknown charge is acknowledged and logged", async () => {
    const orgId = newOrgId();
    await checkedOut(orgId);
    await deliver(eventFor("invoice.paid", orgId, at(T0 + 100)));
    const byIntent = eventFor("charge.dispute.created", orgId, (e) => {
      e.created = T0 + 200;
      e.data.object.charge = "ch_not_seen";
    });
    expect(await action(await deliver(byIntent))).toBe("billing_suspended");
    const unknown = eventFor("charge.dispute.created", newOrgId());
    const res = await deliver(unknown);
    expect(res.status).toBe(200);
    expect(await res.json<any>()).toMatchObject({ action: "ignored_unknown_charge" });
  });
});

describe("redelivery", () => {
  it("an event redelivered 25 hours later (after the service forgot its idempotency row) does not act again", async () => {
    const orgId = newOrgId();
    await checkedOut(orgId);
    const failed = eventFor("invoice.payment_failed", orgId, at(T0 + 100));
    expect(await action(await deliver(failed))).toBe("billing_suspended");
    expect(await action(await deliver(eventFor("invoice.paid", orgId, at(T0 + 50))))).toBe("ignored_out_of_order");
    // Restored by ops meanwhile (force-rotate keeps billing_suspended; use the service's DB as an operator would).
    await env.SERVICE_DB.prepare("UPDATE organizations SET status = 'active' WHERE org_id = ?").bind(orgId).run();
    // 25 hours on: the service's 24-hour idempotency rows are gone (its cron), Stripe redelivers the old event.
    await env.SERVICE_DB.prepare("DELETE FROM idempotency_keys WHERE idempotency_key = ?").bind(failed.id).run();
    const later = Date.now() + 25 * 3600_000;
    vi.spyOn(Date, "now").mockReturnValue(later);
    const payload = JSON.stringify(failed);
    const res = await exports.default.fetch("https://payments.example.com/stripe/webhook", {
      method: "POST",
      headers: { "content-type": "application/json", "stripe-signature": await sign(payload, { timestamp: Math.floor(later / 1000) }) },
      body: payload,
    });
    expect(res.status).toBe(200);
    expect(await res.json<any>()).toMatchObject({ action: "duplicate", detail: "billing_suspended" });
    expect((await org(orgId))?.status).toBe("active");
    const suspends = await env.SERVICE_DB.prepare("SELECT COUNT(*) AS n FROM audit_log WHERE org_id = ? AND event_type = 'ADMIN_BILLING_SUSPEND'")
      .bind(orgId)
      .first<any>();
    expect(suspends.n).toBe(1);
    const kept = await env.DB.prepare("SELECT status FROM stripe_events WHERE event_id = ?").bind(failed.id).first<any>();
    expect(kept.status).toBe("done");
  });

  it("20 concurrent deliveries of one event: it acts once; the others are 200 duplicates or 409 (Stripe retries those)", async () => {
    const orgId = newOrgId();
    const event = eventFor("checkout.session.completed", orgId);
    const responses = await Promise.all(Array.from({ length: 20 }, () => deliver(event)));
    const bodies = await Promise.all(responses.map((r) => r.json<any>()));
    expect(bodies.filter((b) => b.action === "org_created")).toHaveLength(1);
    for (const [i, r] of responses.entries()) {
      if (bodies[i].action === "org_created") continue;
      expect(r.status === 409 || (r.status === 200 && bodies[i].action === "duplicate"), JSON.stringify(bodies[i])).toBe(true);
    }
    expect(await ownerEmails(orgId)).toHaveLength(1);
    const creates = await env.SERVICE_DB.prepare("SELECT COUNT(*) AS n FROM audit_log WHERE org_id = ? AND event_type = 'ORG_CREATED'")
      .bind(orgId)
      .first<any>();
    expect(creates.n).toBe(1);
    // And a delivery after they all finished is a 200 duplicate.
    expect(await action(await deliver(event))).toBe("duplicate");
  });
});

describe("least privilege", () => {
  it("it never holds a key: none in its own database, none in what the service answered it", async () => {
    const orgId = newOrgId();
    await deliver(eventFor("checkout.session.completed", orgId, at(T0)));
    await deliver(eventFor("invoice.payment_failed", orgId, at(T0 + 100)));
    await deliver(eventFor("invoice.paid", orgId, at(T0 + 200)));
    expect((await ownerEmails(orgId)).map((e) => e.kind)).toEqual(["welcome_email", "access_restored"]);
    const { results: tables } = await env.DB.prepare(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'",
    ).all<{ name: string }>();
    let dump = "";
    for (const { name } of tables) dump += JSON.stringify((await env.DB.prepare(`SELECT * FROM "${name}"`).all()).results);
    expect(dump).toContain(orgId);
    expect(dump).not.toMatch(/(ck_live_|sk_live_|kvqp_)[0-9A-HJKMNP-TV-Z]{8}_?[0-9A-HJKMNP-TV-Z]{18}/);
  });

  it("the payment worker's config holds no master key and no email binding; its secrets are Stripe's", () => {
    expect(config).not.toMatch(/MASTER_ADMIN_KEY/);
    expect(config).not.toMatch(/send_email/);
    expect((env as unknown as Record<string, unknown>).EMAIL).toBeUndefined();
    expect(config).toMatch(/entrypoint = "BillingService"/);
    expect(Object.keys(env).filter((k) => k.startsWith("MASTER_ADMIN_KEY"))).toEqual([]);
  });
});

describe("D1 round trips of the payment worker's own database, per delivery", () => {
  /** env.DB wrapped to count round trips (each batch, first, run, all is one). */
  function counted() {
    const counter = { n: 0 };
    const wrap = (s: D1PreparedStatement): D1PreparedStatement =>
      new Proxy(s, {
        get(t, p) {
          if (p === "bind") return (...a: unknown[]) => wrap(t.bind(...a));
          if (p === "first" || p === "run" || p === "all" || p === "raw")
            return (...a: unknown[]) => (counter.n++, (t[p] as (...x: unknown[]) => unknown)(...a));
          const v = Reflect.get(t, p);
          return typeof v === "function" ? v.bind(t) : v;
        },
      });
    const db = new Proxy(env.DB, {
      get(t, p) {
        if (p === "prepare") return (sql: string) => wrap(t.prepare(sql));
        if (p === "batch") return (stmts: D1PreparedStatement[]) => (counter.n++, t.batch(stmts));
        const v = Reflect.get(t, p);
        return typeof v === "function" ? v.bind(t) : v;
      },
    });
    return { db, counter };
  }

  it("checkout 3, a restoring invoice.paid 4, a cancellation 4, a dispute 4, a duplicate 2", async () => {
    const orgId = newOrgId();
    const measure = async (event: unknown) => {
      const { db, counter } = counted();
      const res = await deliverWithEnv({ DB: db }, event);
      expect(res.status).toBe(200);
      return counter.n;
    };
    const checkout = eventFor("checkout.session.completed", orgId, at(T0));
    expect(await measure(checkout)).toBe(3); // claim, account + payments, finish
    expect(await measure(eventFor("invoice.payment_failed", orgId, at(T0 + 100)))).toBe(4); // claim, account, slot, finish
    expect(await measure(eventFor("invoice.paid", orgId, at(T0 + 200)))).toBe(4); // claim, account, payments + slot, finish
    expect(await measure(eventFor("charge.dispute.created", orgId, at(T0 + 300)))).toBe(4); // claim, account by charge, slot, finish
    expect(await measure(eventFor("customer.subscription.deleted", orgId, at(T0 + 400)))).toBe(4); // claim, account, cancel + slot, finish
    expect(await measure(checkout)).toBe(2); // claim, its status: a duplicate
  });
});
