// One handler per Stripe event type this worker acts on, with the rules Stripe's real delivery needs:
// - Ownership: checkout.session.completed records the org's Stripe customer, subscription and email. A later event
//   for that org must name the same customer (and subscription, where it names one), else it is acknowledged,
//   logged as a mismatch, and changes nothing. New keys are emailed only to the address recorded at checkout.
// - Order: per org, the last applied billing event is remembered as (created, rank, event id); an event that does
//   not sort after it is acknowledged and changes nothing. At equal `created` seconds the rank decides, and
//   suspending beats restoring (paid 1 < payment failed 2 < dispute 3 < subscription deleted 4); then the event id.
//   A cancellation is terminal: it always suspends, and no later event about an older invoice restores the org.
// - Disputes: a dispute names only a charge and a payment intent; they are resolved through the payments recorded
//   from checkouts and paid invoices (no Stripe API call).
// The Stripe event id is the Idempotency-Key of every service call, and index.ts remembers processed ids.
import type Stripe from "stripe";
import { type BillingAnswer, callBilling } from "./billing";
import type { PaymentEnv } from "./env";
import { type OrgKeys, sendKeyEmail } from "./key-email";
import { log } from "./log";
import * as state from "./state";

export type Outcome = { action: string; status?: number; org_id?: string; detail?: string };


export const RANK: Record<string, number> = {
  "invoice.paid": 1,
  "invoice.payment_failed": 2,
  "charge.dispute.created": 3,
  "customer.subscription.deleted": 4,
};

const idOf = (v: string | { id: string } | null | undefined) => (typeof v === "string" ? v : (v?.id ?? null));

/** A 4xx from the service is final: log it (never a key) and acknowledge the event. */
function finalRefusal(event: Stripe.Event, action: string, answer: BillingAnswer, orgId?: string): Outcome {
  log({ level: "warn", event_id: event.id, type: event.type, action, org_id: orgId, status: answer.status, error: answer.body.error, details: answer.body.details });
  return { action: `${action}_refused`, status: answer.status, org_id: orgId, detail: answer.body.error };
}

function acknowledged(event: Stripe.Event, action: string, detail: string, orgId?: string, level: "info" | "warn" = "warn"): Outcome {
  log({ level, event_id: event.id, type: event.type, action, org_id: orgId, detail });
  return { action, org_id: orgId, detail };
}

/**
 * The org an event is about, and that it belongs to the customer recorded for it. Null with the outcome to answer
 * when it does not: unknown org, or another customer's (or subscription's) event.
 */
async function ownedAccount(
  env: PaymentEnv,
  event: Stripe.Event,
  claims: { orgId?: string | null; customer: string | null; subscription: string | null },
): Promise<{ account: state.Account } | { outcome: Outcome }> {
  const account = await state.findAccount(env.DB, claims.orgId ?? null, claims.subscription);
  if (!account) return { outcome: acknowledged(event, "ignored", "no checkout recorded for this org or subscription", claims.orgId ?? undefined) };
  const customerDiffers = claims.customer !== null && claims.customer !== account.customer_id;
  const subscriptionDiffers = claims.subscription !== null && account.subscription_id !== null && claims.subscription !== account.subscription_id;
  if (customerDiffers || subscriptionDiffers) {
    log({ level: "warn", event_id: event.id, type: event.type, action: "ownership_mismatch", org_id: account.org_id, customer: claims.customer, subscription: claims.subscription });
    return { outcome: { action: "ownership_mismatch", org_id: account.org_id, detail: customerDiffers ? "customer differs from the one recorded at checkout" : "subscription differs from the one recorded at checkout" } };
  }
  return { account };
}

async function billingSuspend(event: Stripe.Event, env: PaymentEnv, orgId: string): Promise<Outcome> {
  const answer = await callBilling("billing_suspend", (b) => b.billingSuspend(event.id, orgId), env);
  if (answer.status !== 200) return finalRefusal(event, "billing_suspend", answer, orgId);
  log({ level: "info", event_id: event.id, type: event.type, action: "billing_suspend", org_id: orgId });
  return { action: "billing_suspended", status: 200, org_id: orgId };
}

/** Metadata set on the Checkout Session (see README): org_id, org_name, tier, domain, allowed_origins. */
async function checkoutCompleted(event: Stripe.Event, env: PaymentEnv): Promise<Outcome> {
  const session = event.data.object as Stripe.Checkout.Session;
  const m = session.metadata ?? {};
  const customer = idOf(session.customer);
  const to = session.customer_details?.email ?? session.customer_email ?? null;
  if (!customer) return acknowledged(event, "ignored", "the session has no customer to own the org", m.org_id);
  const body = {
    org_id: m.org_id,
    name: m.org_name ?? session.customer_details?.name ?? undefined,
    domain: m.domain ?? "general",
    tier: m.tier,
    allowed_origins: m.allowed_origins,
  };
  const answer = await callBilling("org_create", (b) => b.createOrg(event.id, body), env);
  if (answer.status !== 201) return finalRefusal(event, "org_create", answer, m.org_id);
  const orgId = answer.body.org_id as string;
  const paymentIntent = idOf(session.payment_intent);
  await env.DB.batch([
    state.accountStatement(env.DB, { org_id: orgId, customer_id: customer, subscription_id: idOf(session.subscription), email: to }),
    ...state.paymentStatements(env.DB, orgId, paymentIntent ? [paymentIntent] : []),
  ]);
  if (answer.body.already_provisioned) return acknowledged(event, "already_provisioned", "org create replayed", orgId, "info");
  if (!to) {
    log({ level: "error", event_id: event.id, action: "key_email_skipped", org_id: orgId, detail: "the session has no customer email; force-rotate to issue keys" });
    return { action: "org_created_without_email", status: 201, org_id: orgId };
  }
  try {
    await sendKeyEmail(env, to, orgId, { client: answer.body.api_key, server: answer.body.server_api_key }, "created");
  } catch (err) {
    // A retry could not help: the service returns the keys only once. Ops re-issue them with force-rotate.
    log({ level: "error", event_id: event.id, action: "key_email_failed", org_id: orgId, detail: String(err) });
    return { action: "org_created_email_failed", status: 201, org_id: orgId };
  }
  log({ level: "info", event_id: event.id, type: event.type, action: "org_created", org_id: orgId });
  return { action: "org_created", status: 201, org_id: orgId };
}

const invoiceOrgId = (invoice: Stripe.Invoice) =>
  [invoice.parent?.subscription_details?.metadata, invoice.metadata, invoice.lines?.data?.[0]?.metadata].find((m) => m?.org_id)?.org_id ?? null;
const invoiceSubscription = (invoice: Stripe.Invoice) => idOf(invoice.parent?.subscription_details?.subscription as string | null | undefined);

/** The charges and payment intents that paid an invoice (the payments list, and the older top-level fields). */
function invoicePaymentRefs(invoice: Stripe.Invoice): string[] {
  const legacy = invoice as unknown as { charge?: string | { id: string } | null; payment_intent?: string | { id: string } | null };
  const refs = [idOf(legacy.charge), idOf(legacy.payment_intent)];
  for (const p of invoice.payments?.data ?? []) {
    const payment = p.payment as unknown as { charge?: string | { id: string }; payment_intent?: string | { id: string } };
    refs.push(idOf(payment?.charge), idOf(payment?.payment_intent));
  }
  return [...new Set(refs.filter((r): r is string => !!r))];
}

const orderOf = (event: Stripe.Event) => ({ created: event.created, rank: RANK[event.type] ?? 0, id: event.id });

/** A paid invoice restores a billing-suspended org (new keys, emailed once to the checkout's address). */
async function invoicePaid(event: Stripe.Event, env: PaymentEnv): Promise<Outcome> {
  const invoice = event.data.object as Stripe.Invoice;
  const owned = await ownedAccount(env, event, { orgId: invoiceOrgId(invoice), customer: idOf(invoice.customer), subscription: invoiceSubscription(invoice) });
  if ("outcome" in owned) return owned.outcome;
  const { account } = owned;
  // The payments are recorded either way (a later dispute may name them); the slot only for an uncancelled org.
  const payments = state.paymentStatements(env.DB, account.org_id, invoicePaymentRefs(invoice));
  if (account.cancelled_at !== null) {
    if (payments.length) await env.DB.batch(payments);
    return acknowledged(event, "ignored_cancelled", "the subscription was cancelled; a paid invoice does not restore it", account.org_id);
  }
  if (!(await state.takeOrderSlot(env.DB, payments, state.orderSlotStatement(env.DB, account.org_id, orderOf(event))))) {
    return acknowledged(event, "ignored_out_of_order", "an event created later was already applied", account.org_id);
  }
  const usage = await callBilling("usage_read", (b) => b.listUsage({}, account.org_id), env);
  if (usage.status !== 200) return finalRefusal(event, "usage_read", usage, account.org_id);
  if (usage.body.status !== "billing_suspended") return { action: "nothing_to_restore", status: 200, org_id: account.org_id, detail: usage.body.status };
  const answer = await callBilling("billing_rotate", (b) => b.billingRotate(event.id, account.org_id), env);
  if (answer.status !== 200) return finalRefusal(event, "billing_rotate", answer, account.org_id);
  const keys: OrgKeys | null = answer.body.new_api_key ? { client: answer.body.new_api_key, server: answer.body.new_server_api_key } : null;
  if (keys && account.email) {
    try {
      await sendKeyEmail(env, account.email, account.org_id, keys, "rotated");
    } catch (err) {
      log({ level: "error", event_id: event.id, action: "key_email_failed", org_id: account.org_id, detail: String(err) });
    }
  }
  log({ level: "info", event_id: event.id, type: event.type, action: "billing_rotate", org_id: account.org_id, replayed: !keys });
  return { action: "billing_rotated", status: 200, org_id: account.org_id };
}

/** Cancellation: terminal. Recorded and applied whatever its order; the order slot only moves forward. */
async function subscriptionDeleted(event: Stripe.Event, env: PaymentEnv): Promise<Outcome> {
  const sub = event.data.object as Stripe.Subscription;
  const owned = await ownedAccount(env, event, { orgId: sub.metadata?.org_id ?? null, customer: idOf(sub.customer), subscription: sub.id });
  if ("outcome" in owned) return owned.outcome;
  await state.takeOrderSlot(env.DB, [state.cancellationStatement(env.DB, owned.account.org_id, event.created)], state.orderSlotStatement(env.DB, owned.account.org_id, orderOf(event), true));
  return billingSuspend(event, env, owned.account.org_id);
}

/** Dunning is exhausted when Stripe will not try the payment again. */
async function invoicePaymentFailed(event: Stripe.Event, env: PaymentEnv): Promise<Outcome> {
  const invoice = event.data.object as Stripe.Invoice;
  if (invoice.next_payment_attempt !== null) return { action: "dunning_continues", detail: `next attempt ${invoice.next_payment_attempt}` };
  const owned = await ownedAccount(env, event, { orgId: invoiceOrgId(invoice), customer: idOf(invoice.customer), subscription: invoiceSubscription(invoice) });
  if ("outcome" in owned) return owned.outcome;
  if (!(await state.takeOrderSlot(env.DB, [], state.orderSlotStatement(env.DB, owned.account.org_id, orderOf(event))))) return acknowledged(event, "ignored_out_of_order", "an event created later was already applied", owned.account.org_id);
  return billingSuspend(event, env, owned.account.org_id);
}

/** A real dispute carries a charge id and a payment intent id, and no metadata of ours. */
async function disputeCreated(event: Stripe.Event, env: PaymentEnv): Promise<Outcome> {
  const dispute = event.data.object as Stripe.Dispute;
  const refs = [idOf(dispute.charge), idOf(dispute.payment_intent)].filter((r): r is string => !!r);
  const account = await state.accountByPayment(env.DB, refs);
  if (!account) return acknowledged(event, "ignored_unknown_charge", `no org recorded for ${refs.join(", ") || "this dispute"}`);
  if (!(await state.takeOrderSlot(env.DB, [], state.orderSlotStatement(env.DB, account.org_id, orderOf(event))))) return acknowledged(event, "ignored_out_of_order", "an event created later was already applied", account.org_id);
  return billingSuspend(event, env, account.org_id);
}

export const HANDLERS: Partial<Record<string, (event: Stripe.Event, env: PaymentEnv) => Promise<Outcome>>> = {
  "checkout.session.completed": checkoutCompleted,
  "invoice.paid": invoicePaid,
  "customer.subscription.deleted": subscriptionDeleted,
  "invoice.payment_failed": invoicePaymentFailed,
  "charge.dispute.created": disputeCreated,
};
