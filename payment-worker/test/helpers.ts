import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import Stripe from "stripe";
import worker from "../src/index";
import checkout from "./fixtures/checkout.session.completed.json";
import dispute from "./fixtures/charge.dispute.created.json";
import customerCreated from "./fixtures/customer.created.json";
import subscriptionDeleted from "./fixtures/customer.subscription.deleted.json";
import invoicePaid from "./fixtures/invoice.paid.json";
import paymentFailed from "./fixtures/invoice.payment_failed.json";
export { hmacHex } from "../../test/crypto";

export const FIXTURES = {
  "checkout.session.completed": checkout,
  "invoice.paid": invoicePaid,
  "customer.subscription.deleted": subscriptionDeleted,
  "invoice.payment_failed": paymentFailed,
  "charge.dispute.created": dispute,
  "customer.created": customerCreated,
} as const;

let n = 0;
export const uniq = (label: string) => `${label}_${Date.now().toString(36)}${(n++).toString(36)}`;

/** The fixtures' Stripe ids, made the org's own in each test (one customer, subscription, charge per org). */
const STRIPE_IDS = [
  "cs_test_a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuVwXyZ",
  "cus_RsT9uV8wX7yZ6a",
  "sub_1QcKpK2eZvKYlo2CxY1z2A3b",
  "ch_1QcKpK2eZvKYlo2CcHaRgE01",
  "pi_1QcKpK2eZvKYlo2CpAyInT01",
];
export const stripeIdsOf = (orgId: string) => ({
  session: `cs_${orgId}`,
  customer: `cus_${orgId}`,
  subscription: `sub_${orgId}`,
  charge: `ch_${orgId}`,
  paymentIntent: `pi_${orgId}`,
});

/** A fixture with a fresh event id, and every org_id and Stripe id made this org's: one org per test. */
export function eventFor(type: keyof typeof FIXTURES, orgId: string, patch: (e: any) => void = () => {}) {
  let text = JSON.stringify(FIXTURES[type]).replaceAll("org_acme_2026_example", orgId);
  for (const id of STRIPE_IDS) text = text.replaceAll(id, `${id.split("_")[0]}_${orgId}`);
  const event = JSON.parse(text);
  event.id = uniq("evt_test");
  event.created = Math.floor(Date.now() / 1000);
  patch(event);
  return event;
}

const cryptoProvider = Stripe.createSubtleCryptoProvider();

/** Signs the payload the way Stripe does (t=…,v1=HMAC-SHA256 of "t.payload"). */
export const sign = (payload: string, options: { timestamp?: number; secret?: string } = {}) =>
  Stripe.webhooks.generateTestHeaderStringAsync({ payload, secret: options.secret ?? env.STRIPE_WEBHOOK_SECRET, timestamp: options.timestamp, cryptoProvider });

export async function deliver(event: unknown, options: { timestamp?: number; secret?: string; tamper?: (payload: string) => string } = {}) {
  const payload = JSON.stringify(event);
  const signature = await sign(payload, options);
  return exports.default.fetch("https://payments.example.com/stripe/webhook", {
    method: "POST",
    headers: { "content-type": "application/json", "stripe-signature": signature },
    body: options.tamper ? options.tamper(payload) : payload,
  });
}

/** Delivers to the payment worker with some bindings replaced (e.g. the service down). */
export async function deliverWithEnv(overrides: Record<string, unknown>, event: unknown) {
  const payload = JSON.stringify(event);
  const ctx = createExecutionContext();
  const res = await worker.fetch(
    new Request("https://payments.example.com/stripe/webhook", {
      method: "POST",
      headers: { "content-type": "application/json", "stripe-signature": await sign(payload) },
      body: payload,
    }),
    { ...env, ...overrides } as never,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return res;
}

/**
 * The emails the service queued for an org's owner (its outbox rows, oldest first): the payment worker sends none,
 * and none of these carries a key (claim-to-mint).
 */
export const ownerEmails = async (orgId: string) =>
  (
    await env.SERVICE_DB.prepare(
      `SELECT o.kind, u.email FROM outbox o JOIN users u ON u.id = json_extract(o.payload, '$.user_id')
        WHERE json_extract(o.payload, '$.org_id') = ? ORDER BY o.created_at, o.id`,
    )
      .bind(orgId)
      .all<{ kind: string; email: string }>()
  ).results;

export const org = (orgId: string) => env.SERVICE_DB.prepare("SELECT * FROM organizations WHERE org_id = ?").bind(orgId).first<Record<string, any>>();

export const liveKeyHashes = async (orgId: string) =>
  (await env.SERVICE_DB.prepare("SELECT key_hash FROM api_keys WHERE org_id = ? AND revoked_at IS NULL").bind(orgId).all<{ key_hash: string }>()).results
    .map((r) => r.key_hash)
    .sort();
