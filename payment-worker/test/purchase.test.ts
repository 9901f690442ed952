// The payment worker provisions only what was paid for, at the tier that was bought (the session's line items,
// read through the Stripe SDK from the local stand-in), and a dispute's suspension holds until the dispute is won.
import { env } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { deliver, eventFor, org, ownerEmails, uniq } from "./helpers";

afterEach(() => vi.restoreAllMocks());
const newOrgId = () => `org_${uniq("pu").replace(/[^a-z0-9_]/g, "")}`;
const T0 = Math.floor(Date.now() / 1000) - 3600;
const outcome = async (res: Response) => {
  expect(res.status).toBe(200);
  return res.json<any>();
};
/** What the stand-in answers for this org's session: these price ids (null: a session Stripe does not know). */
const bought = (orgId: string, prices: string[] | null | "error") =>
  fetch(`${env.STRIPE_API_BASE}/__stand-in/sessions/cs_${orgId}/line_items`, { method: "PUT", body: JSON.stringify(prices) });
const checkout = (orgId: string, session: Record<string, unknown> = {}, type = "checkout.session.completed") =>
  eventFor("checkout.session.completed", orgId, (e) => {
    e.type = type;
    e.created = T0;
    Object.assign(e.data.object, session);
  });
function captureLogs() {
  const lines: any[] = [];
  vi.spyOn(console, "log").mockImplementation((line: unknown) => void lines.push(JSON.parse(String(line))));
  return lines;
}

describe("a checkout provisions only what was paid for", () => {
  it("an unpaid session (delayed payment method) provisions nothing; async_payment_succeeded provisions it once", async () => {
    const orgId = newOrgId();
    const unpaid = { mode: "payment", payment_status: "unpaid", subscription: null };
    expect(await outcome(await deliver(checkout(orgId, unpaid)))).toMatchObject({ action: "awaiting_payment" });
    expect(await org(orgId)).toBeNull();
    expect(await ownerEmails(orgId)).toEqual([]);
    const paid = { ...unpaid, payment_status: "paid" };
    expect(await outcome(await deliver(checkout(orgId, paid, "checkout.session.async_payment_succeeded")))).toMatchObject({
      action: "org_created",
      org_id: orgId,
    });
    expect(await org(orgId)).toMatchObject({ status: "active", tier: "standard" });
    // The same purchase again (a completed event carrying paid, after the async one): one org, one email.
    expect(await outcome(await deliver(checkout(orgId, paid)))).toMatchObject({ action: "already_provisioned" });
    expect(await ownerEmails(orgId)).toHaveLength(1);
  });

  it("async_payment_failed provisions nothing and is logged", async () => {
    const logs = captureLogs();
    const orgId = newOrgId();
    const failed = await outcome(await deliver(checkout(orgId, { mode: "payment", payment_status: "unpaid" }, "checkout.session.async_payment_failed")));
    expect(failed).toMatchObject({ action: "payment_failed" });
    expect(await org(orgId)).toBeNull();
    expect(logs.some((l) => l.action === "payment_failed" && l.org_id === orgId)).toBe(true);
  });

  it("a setup-mode session provisions nothing, even marked paid by its metadata", async () => {
    const orgId = newOrgId();
    expect(await outcome(await deliver(checkout(orgId, { mode: "setup", payment_status: "no_payment_required", subscription: null })))).toMatchObject({
      action: "ignored_setup_mode",
    });
    expect(await org(orgId)).toBeNull();
  });

  it("a subscription trial (no payment required) provisions; a one-off with no payment required does not", async () => {
    const trial = newOrgId();
    expect(await outcome(await deliver(checkout(trial, { mode: "subscription", payment_status: "no_payment_required" })))).toMatchObject({
      action: "org_created",
    });
    const oneOff = newOrgId();
    expect(await outcome(await deliver(checkout(oneOff, { mode: "payment", payment_status: "no_payment_required", subscription: null })))).toMatchObject({
      action: "awaiting_payment",
    });
    expect(await org(oneOff)).toBeNull();
  });
});

describe("the tier is what was bought (PRICE_TIERS), not metadata", () => {
  it("the price's tier, with metadata.tier absent", async () => {
    const orgId = newOrgId();
    await bought(orgId, ["price_enterprise_monthly"]);
    const event = checkout(orgId);
    delete event.data.object.metadata.tier;
    expect(await outcome(await deliver(event))).toMatchObject({ action: "org_created" });
    expect(await org(orgId)).toMatchObject({ tier: "enterprise" });
  });

  it("metadata.tier that disagrees with the purchase refuses; nothing is provisioned", async () => {
    const logs = captureLogs();
    const orgId = newOrgId();
    await bought(orgId, ["price_starter_monthly"]);
    const event = checkout(orgId);
    event.data.object.metadata.tier = "enterprise";
    expect(await outcome(await deliver(event))).toMatchObject({ action: "tier_mismatch" });
    expect(await org(orgId)).toBeNull();
    expect(logs.find((l) => l.action === "tier_mismatch")).toMatchObject({ level: "error", metadata_tier: "enterprise", purchased_tier: "starter" });
  });

  for (const [label, prices] of [
    ["an unknown price", ["price_someone_elses"]],
    ["no line items", []],
    ["prices of two tiers", ["price_starter_monthly", "price_enterprise_monthly"]],
    ["a session Stripe does not know", null],
  ] as const) {
    it(`${label}: nothing provisioned, an error logged`, async () => {
      const logs = captureLogs();
      const orgId = newOrgId();
      await bought(orgId, prices as string[] | null);
      expect(await outcome(await deliver(checkout(orgId)))).toMatchObject({ action: "unknown_purchase" });
      expect(await org(orgId)).toBeNull();
      expect(logs.find((l) => l.action === "unknown_purchase")).toMatchObject({ level: "error", org_id: orgId });
    });
  }

  it("the Stripe API failing: 503, so Stripe retries; nothing provisioned meanwhile", async () => {
    const orgId = newOrgId();
    await bought(orgId, "error");
    const event = checkout(orgId);
    expect((await deliver(event)).status).toBe(503);
    expect(await org(orgId)).toBeNull();
    await bought(orgId, ["price_standard_monthly"]);
    expect(await outcome(await deliver(event))).toMatchObject({ action: "org_created" }); // Stripe's retry
  });
});

describe("a dispute's suspension holds until the dispute is won", () => {
  const dispute = (orgId: string, type: string, created: number, status: string) =>
    eventFor("charge.dispute.created", orgId, (e) => {
      e.type = type;
      e.created = created;
      e.data.object.status = status;
    });
  const invoicePaid = (orgId: string, created: number) => eventFor("invoice.paid", orgId, (e) => (e.created = created));

  it("a paid invoice does not lift it; charge.dispute.closed (won) does", async () => {
    const orgId = newOrgId();
    expect((await outcome(await deliver(checkout(orgId)))).action).toBe("org_created");
    expect((await outcome(await deliver(invoicePaid(orgId, T0 + 10)))).action).toBe("nothing_to_restore"); // records the charge
    expect((await outcome(await deliver(dispute(orgId, "charge.dispute.created", T0 + 20, "needs_response")))).action).toBe("billing_suspended");
    expect((await outcome(await deliver(invoicePaid(orgId, T0 + 30)))).action).toBe("ignored_disputed");
    expect((await org(orgId))?.status).toBe("billing_suspended");
    expect((await outcome(await deliver(dispute(orgId, "charge.dispute.closed", T0 + 40, "won")))).action).toBe("billing_rotated");
    expect((await org(orgId))?.status).toBe("active");
    // The dispute is over: the next paid invoice is an ordinary one again.
    expect((await outcome(await deliver(invoicePaid(orgId, T0 + 50)))).action).toBe("nothing_to_restore");
  });

  it("charge.dispute.closed (lost) keeps the suspension, and later paid invoices do not lift it", async () => {
    const orgId = newOrgId();
    await deliver(checkout(orgId));
    await deliver(invoicePaid(orgId, T0 + 10));
    await deliver(dispute(orgId, "charge.dispute.created", T0 + 20, "needs_response"));
    expect((await outcome(await deliver(dispute(orgId, "charge.dispute.closed", T0 + 40, "lost")))).action).toBe("dispute_lost");
    expect((await outcome(await deliver(invoicePaid(orgId, T0 + 50)))).action).toBe("ignored_disputed");
    expect((await org(orgId))?.status).toBe("billing_suspended");
  });
});

describe("the webhook's body cap", () => {
  it("a body over 256 KiB is 413 before it is read whole or hashed, with or without Content-Length", async () => {
    const big = "x".repeat(256 * 1024 + 1);
    const withLength = await exports.default.fetch("https://p/stripe/webhook", {
      method: "POST",
      headers: { "stripe-signature": "t=1,v1=00", "content-length": String(big.length) },
      body: big,
    });
    expect(withLength.status).toBe(413);
    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 300; i++) controller.enqueue(new TextEncoder().encode("y".repeat(1024)));
        controller.close();
      },
    });
    const chunked = await exports.default.fetch("https://p/stripe/webhook", {
      method: "POST",
      headers: { "stripe-signature": "t=1,v1=00" },
      body: stream,
      duplex: "half",
    } as RequestInit);
    expect(chunked.status).toBe(413);
  });
});
