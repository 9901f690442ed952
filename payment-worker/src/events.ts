// One handler per Stripe event type this worker acts on, with the rules Stripe's real delivery needs:
// - Payment: a checkout provisions only what was paid for: a paid session, or a subscription whose first invoice
//   needs no payment (a trial); an unpaid one waits for checkout.session.async_payment_succeeded; setup mode buys
//   nothing. The tier is what the line items' prices map to in PRICE_TIERS (metadata.tier must agree).
// - Ownership: checkout.session.completed records the org's Stripe customer, subscription and email. A later event
//   for that org must name the same customer (and subscription, where it names one), else it is acknowledged,
//   logged as a mismatch, and changes nothing. The checkout's email becomes the org's owner (claim-to-mint: no key is
//   ever emailed or returned to this worker).
// - Order: per org, the last applied billing event is remembered as (created, rank, event id); an event that does
//   not sort after it is acknowledged and changes nothing. At equal `created` seconds the rank decides, and
//   suspending beats restoring (paid 1 < payment failed 2 < dispute 3 < subscription deleted 4); then the event id.
//   A cancellation is terminal: it always suspends, and no later event about an older invoice restores the org.
// - Disputes: a dispute names only a charge and a payment intent; they are resolved through the payments recorded
//   from checkouts and paid invoices. A dispute's suspension stays until charge.dispute.closed (won); a paid
//   invoice does not lift it; a lost dispute keeps it.
// The Stripe event id is the Idempotency-Key of every service call but org create, whose key is the Checkout Session
// id (one purchase, one org, whichever of its events arrives); index.ts remembers processed event ids.
import type Stripe from "stripe";
import { type BillingAnswer, callBilling } from "./billing";
import type { PaymentEnv } from "./env";
import type { BillingReason } from "../../src/billing/entrypoint";
import { log } from "./log";
import * as state from "./state";
import { purchasedTier } from "./stripe-api";

export type Outcome = { action: string; status?: number; org_id?: string; detail?: string };

export const RANK: Record<string, number> = {
  "invoice.paid": 1,
  "charge.dispute.closed": 1,
  "invoice.payment_failed": 2,
  "charge.dispute.created": 3,
  "customer.subscription.deleted": 4,
};

const idOf = (v: string | { id: string } | null | undefined) => (typeof v === "string" ? v : (v?.id ?? null));

/** A 4xx from the service is final: log it (never a key) and acknowledge the event. */
function finalRefusal(event: Stripe.Event, action: string, answer: BillingAnswer, orgId?: string): Outcome {
  log({
    level: "warn",
    event_id: event.id,
    type: event.type,
    action,
    org_id: orgId,
    status: answer.status,
    error: answer.body.error,
    details: answer.body.details,
  });
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
    log({
      level: "warn",
      event_id: event.id,
      type: event.type,
      action: "ownership_mismatch",
      org_id: account.org_id,
      customer: claims.customer,
      subscription: claims.subscription,
    });
    return {
      outcome: {
        action: "ownership_mismatch",
        org_id: account.org_id,
        detail: customerDiffers ? "customer differs from the one recorded at checkout" : "subscription differs from the one recorded at checkout",
      },
    };
  }
  return { account };
}

async function billingSuspend(event: Stripe.Event, env: PaymentEnv, orgId: string, reason: BillingReason = "billing"): Promise<Outcome> {
  const answer = await callBilling("billing_suspend", (b) => b.billingSuspend(event.id, orgId, reason), env);
  if (answer.status !== 200) return finalRefusal(event, "billing_suspend", answer, orgId);
  log({ level: "info", event_id: event.id, type: event.type, action: "billing_suspend", org_id: orgId });
  return { action: "billing_suspended", status: 200, org_id: orgId };
}

/**
 * Whether a session's purchase is settled: paid, or a subscription whose first invoice needs no payment (a trial, or
 * a 100 % coupon: its later invoices go through dunning like any other). Setup-mode sessions buy nothing.
 */
export function settlement(session: Stripe.Checkout.Session): "settled" | "awaiting_payment" | "nothing_bought" {
  if (session.mode === "setup") return "nothing_bought";
  if (session.payment_status === "paid") return "settled";
  if (session.payment_status === "no_payment_required" && session.mode === "subscription") return "settled";
  return "awaiting_payment";
}

/**
 * checkout.session.completed, and checkout.session.async_payment_succeeded for a delayed payment method. Metadata
 * names the org (org_id, org_name, domain, allowed_origins); the tier comes from the line items' prices through
 * PRICE_TIERS (a metadata.tier that disagrees refuses). The session id is the org create's Idempotency-Key, so the
 * two events of one purchase provision once.
 */
async function checkoutCompleted(event: Stripe.Event, env: PaymentEnv): Promise<Outcome> {
  const session = event.data.object as Stripe.Checkout.Session;
  const m = session.metadata ?? {};
  const customer = idOf(session.customer);
  const to = session.customer_details?.email ?? session.customer_email ?? null;
  const paid = settlement(session);
  if (paid === "nothing_bought") return acknowledged(event, "ignored_setup_mode", "a setup-mode session buys nothing", m.org_id, "info");
  if (paid === "awaiting_payment") {
    return acknowledged(
      event,
      "awaiting_payment",
      `payment_status=${session.payment_status}: provisioned on checkout.session.async_payment_succeeded`,
      m.org_id,
      "info",
    );
  }
  if (!customer) return acknowledged(event, "ignored", "the session has no customer to own the org", m.org_id);
  if (!to) {
    log({ level: "error", event_id: event.id, type: event.type, action: "no_owner_email", org_id: m.org_id, session: session.id });
    return { action: "no_owner_email", org_id: m.org_id, detail: "the session has no customer email: nobody could claim the org's keys" };
  }
  const purchase = await purchasedTier(env, session.id);
  if ("refused" in purchase) {
    log({
      level: "error",
      event_id: event.id,
      type: event.type,
      action: "unknown_purchase",
      org_id: m.org_id,
      session: session.id,
      prices: purchase.prices,
      detail: purchase.refused,
    });
    return { action: "unknown_purchase", org_id: m.org_id, detail: purchase.refused };
  }
  if (m.tier !== undefined && m.tier !== purchase.tier) {
    log({
      level: "error",
      event_id: event.id,
      type: event.type,
      action: "tier_mismatch",
      org_id: m.org_id,
      session: session.id,
      metadata_tier: m.tier,
      purchased_tier: purchase.tier,
    });
    return { action: "tier_mismatch", org_id: m.org_id, detail: `metadata.tier ${m.tier} is not the purchased ${purchase.tier}` };
  }
  const body = {
    org_id: m.org_id,
    name: m.org_name ?? session.customer_details?.name ?? undefined,
    domain: m.domain ?? "general",
    tier: purchase.tier,
    allowed_origins: m.allowed_origins,
    owner_email: to,
  };
  const answer = await callBilling("org_create", (b) => b.createOrg(`checkout:${session.id}`, body), env);
  if (answer.status !== 201) return finalRefusal(event, "org_create", answer, m.org_id);
  const orgId = answer.body.org_id as string;
  const paymentIntent = idOf(session.payment_intent);
  await env.DB.batch([
    state.accountStatement(env.DB, { org_id: orgId, customer_id: customer, subscription_id: idOf(session.subscription), email: to }),
    ...state.paymentStatements(env.DB, orgId, paymentIntent ? [paymentIntent] : []),
  ]);
  if (answer.body.already_provisioned) return acknowledged(event, "already_provisioned", "org create replayed", orgId, "info");
  // No keys came back (claim-to-mint): the service emails the owner a set-password link; the keys are made in the console.
  log({ level: "info", event_id: event.id, type: event.type, action: "org_created", org_id: orgId, tier: purchase.tier });
  return { action: "org_created", status: 201, org_id: orgId };
}

/** A delayed payment failed: nothing was provisioned for the session, and nothing is. */
async function asyncPaymentFailed(event: Stripe.Event): Promise<Outcome> {
  const session = event.data.object as Stripe.Checkout.Session;
  return acknowledged(event, "payment_failed", `the delayed payment of ${session.id} failed: nothing provisioned`, session.metadata?.org_id);
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
  if (account.dispute_status !== null) {
    return acknowledged(
      event,
      "ignored_disputed",
      `a dispute is ${account.dispute_status}: only charge.dispute.closed (won) or an operator restores the org`,
      account.org_id,
    );
  }
  return restore(event, env, account);
}

/**
 * Restores a billing-suspended org; anything else is left alone. No keys: the old ones stay revoked and the service
 * emails the owner to make new ones in the console.
 */
async function restore(event: Stripe.Event, env: PaymentEnv, account: state.Account): Promise<Outcome> {
  const usage = await callBilling("usage_read", (b) => b.listUsage({}, account.org_id), env);
  if (usage.status !== 200) return finalRefusal(event, "usage_read", usage, account.org_id);
  if (usage.body.status !== "billing_suspended") return { action: "nothing_to_restore", status: 200, org_id: account.org_id, detail: usage.body.status };
  const reason: BillingReason = event.type === "charge.dispute.closed" ? "dispute" : "billing";
  const answer = await callBilling("billing_rotate", (b) => b.billingRotate(event.id, account.org_id, reason), env);
  if (answer.status !== 200) return finalRefusal(event, "billing_rotate", answer, account.org_id);
  log({ level: "info", event_id: event.id, type: event.type, action: "billing_rotate", org_id: account.org_id });
  return { action: "billing_rotated", status: 200, org_id: account.org_id };
}

/** Cancellation: terminal. Recorded and applied whatever its order; the order slot only moves forward. */
async function subscriptionDeleted(event: Stripe.Event, env: PaymentEnv): Promise<Outcome> {
  const sub = event.data.object as Stripe.Subscription;
  const owned = await ownedAccount(env, event, { orgId: sub.metadata?.org_id ?? null, customer: idOf(sub.customer), subscription: sub.id });
  if ("outcome" in owned) return owned.outcome;
  await state.takeOrderSlot(
    env.DB,
    [state.cancellationStatement(env.DB, owned.account.org_id, event.created)],
    state.orderSlotStatement(env.DB, owned.account.org_id, orderOf(event), true),
  );
  return billingSuspend(event, env, owned.account.org_id);
}

/** Dunning is exhausted when Stripe will not try the payment again. */
async function invoicePaymentFailed(event: Stripe.Event, env: PaymentEnv): Promise<Outcome> {
  const invoice = event.data.object as Stripe.Invoice;
  if (invoice.next_payment_attempt !== null) return { action: "dunning_continues", detail: `next attempt ${invoice.next_payment_attempt}` };
  const owned = await ownedAccount(env, event, { orgId: invoiceOrgId(invoice), customer: idOf(invoice.customer), subscription: invoiceSubscription(invoice) });
  if ("outcome" in owned) return owned.outcome;
  if (!(await state.takeOrderSlot(env.DB, [], state.orderSlotStatement(env.DB, owned.account.org_id, orderOf(event)))))
    return acknowledged(event, "ignored_out_of_order", "an event created later was already applied", owned.account.org_id);
  return billingSuspend(event, env, owned.account.org_id);
}

/** A real dispute carries a charge id and a payment intent id, and no metadata of ours. */
async function disputeCreated(event: Stripe.Event, env: PaymentEnv): Promise<Outcome> {
  const dispute = event.data.object as Stripe.Dispute;
  const refs = [idOf(dispute.charge), idOf(dispute.payment_intent)].filter((r): r is string => !!r);
  const account = await state.accountByPayment(env.DB, refs);
  if (!account) return acknowledged(event, "ignored_unknown_charge", `no org recorded for ${refs.join(", ") || "this dispute"}`);
  // The dispute is remembered whatever the order: until it is closed won, no paid invoice restores the org.
  const opened = state.disputeStatement(env.DB, account.org_id, "open", event.created);
  if (!(await state.takeOrderSlot(env.DB, [opened], state.orderSlotStatement(env.DB, account.org_id, orderOf(event)))))
    return acknowledged(event, "ignored_out_of_order", "an event created later was already applied", account.org_id);
  return billingSuspend(event, env, account.org_id, "dispute");
}

/**
 * charge.dispute.closed: won (or an inquiry closed without a chargeback) forgets the dispute and restores a
 * billing-suspended, uncancelled org; lost keeps the suspension (an operator decides).
 */
async function disputeClosed(event: Stripe.Event, env: PaymentEnv): Promise<Outcome> {
  const dispute = event.data.object as Stripe.Dispute;
  const refs = [idOf(dispute.charge), idOf(dispute.payment_intent)].filter((r): r is string => !!r);
  const account = await state.accountByPayment(env.DB, refs);
  if (!account) return acknowledged(event, "ignored_unknown_charge", `no org recorded for ${refs.join(", ") || "this dispute"}`);
  if (dispute.status === "lost") {
    await env.DB.batch([state.disputeStatement(env.DB, account.org_id, "lost", event.created)]);
    return acknowledged(event, "dispute_lost", "the org stays suspended; an operator may restore it with billing rotate", account.org_id);
  }
  if (dispute.status !== "won" && dispute.status !== "warning_closed")
    return acknowledged(event, "ignored", `dispute status ${dispute.status}`, account.org_id);
  const cleared = state.disputeStatement(env.DB, account.org_id, null, event.created);
  if (account.cancelled_at !== null) {
    await env.DB.batch([cleared]);
    return acknowledged(event, "ignored_cancelled", "the subscription was cancelled; a won dispute does not restore it", account.org_id);
  }
  if (!(await state.takeOrderSlot(env.DB, [cleared], state.orderSlotStatement(env.DB, account.org_id, orderOf(event))))) {
    return acknowledged(event, "ignored_out_of_order", "an event created later was already applied", account.org_id);
  }
  return restore(event, env, account);
}

export const HANDLERS: Partial<Record<string, (event: Stripe.Event, env: PaymentEnv) => Promise<Outcome>>> = {
  "checkout.session.completed": checkoutCompleted,
  "invoice.paid": invoicePaid,
  "customer.subscription.deleted": subscriptionDeleted,
  "invoice.payment_failed": invoicePaymentFailed,
  "charge.dispute.created": disputeCreated,
  "charge.dispute.closed": disputeClosed,
  "checkout.session.async_payment_succeeded": checkoutCompleted,
  "checkout.session.async_payment_failed": asyncPaymentFailed,
};
