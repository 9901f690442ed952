// One handler per Stripe event type this worker acts on. Each uses the Stripe event.id as the Idempotency-Key, so a
// redelivered event replays at the service and changes nothing.
import type Stripe from "stripe";
import type { PaymentEnv } from "./env";
import { sendKeyEmail } from "./key-email";
import { callOrgService, type ServiceAnswer } from "./org-service";

export type Outcome = { action: string; status?: number; org_id?: string; detail?: string };

const log = (fields: Record<string, unknown>) => console.log(JSON.stringify({ worker: "payment-worker", ...fields }));

/** A 4xx from the service is final: log it (never a key) and acknowledge the event. */
function finalRefusal(event: Stripe.Event, action: string, answer: ServiceAnswer, orgId?: string): Outcome {
  log({ level: "warn", event_id: event.id, type: event.type, action, org_id: orgId, status: answer.status, error: answer.body.error, details: answer.body.details });
  return { action: `${action}_refused`, status: answer.status, org_id: orgId, detail: answer.body.error };
}

const metadataOrgId = (...sources: (Record<string, string> | null | undefined)[]) => sources.find((m) => m?.org_id)?.org_id;

async function billingSuspend(event: Stripe.Event, env: PaymentEnv, orgId: string | undefined): Promise<Outcome> {
  if (!orgId) return ignored(event, "no org_id in the metadata");
  const answer = await callOrgService(env, "BILLING_SUSPEND", "POST", `/v1/admin/billing/org/${encodeURIComponent(orgId)}/suspend`, { idempotencyKey: event.id });
  if (answer.status !== 200) return finalRefusal(event, "billing_suspend", answer, orgId);
  log({ level: "info", event_id: event.id, type: event.type, action: "billing_suspend", org_id: orgId });
  return { action: "billing_suspended", status: 200, org_id: orgId };
}

function ignored(event: Stripe.Event, why: string): Outcome {
  log({ level: "warn", event_id: event.id, type: event.type, action: "ignored", detail: why });
  return { action: "ignored", detail: why };
}

/** Metadata set on the Checkout Session (see README): org_id, org_name, tier, domain, allowed_origins. */
async function checkoutCompleted(event: Stripe.Event, env: PaymentEnv): Promise<Outcome> {
  const session = event.data.object as Stripe.Checkout.Session;
  const m = session.metadata ?? {};
  const body = {
    org_id: m.org_id,
    name: m.org_name ?? session.customer_details?.name ?? undefined,
    domain: m.domain ?? "general",
    tier: m.tier,
    allowed_origins: m.allowed_origins,
  };
  const answer = await callOrgService(env, "ORG_CREATE", "POST", "/v1/admin/org/create", { idempotencyKey: event.id, json: body });
  if (answer.status !== 201) return finalRefusal(event, "org_create", answer, m.org_id);
  if (answer.body.already_provisioned) {
    log({ level: "info", event_id: event.id, type: event.type, action: "org_create_replayed", org_id: body.org_id });
    return { action: "already_provisioned", status: 201, org_id: body.org_id };
  }
  const to = session.customer_details?.email ?? session.customer_email;
  if (!to) {
    log({ level: "error", event_id: event.id, action: "key_email_skipped", org_id: body.org_id, detail: "the session has no customer email; force-rotate to issue a key" });
    return { action: "org_created_without_email", status: 201, org_id: body.org_id };
  }
  try {
    await sendKeyEmail(env, to, body.org_id!, { client: answer.body.api_key, server: answer.body.server_api_key }, "created");
  } catch (err) {
    // A retry could not help: the service returns the key only once. Ops re-issue it with force-rotate.
    log({ level: "error", event_id: event.id, action: "key_email_failed", org_id: body.org_id, detail: String(err) });
    return { action: "org_created_email_failed", status: 201, org_id: body.org_id };
  }
  log({ level: "info", event_id: event.id, type: event.type, action: "org_created", org_id: body.org_id });
  return { action: "org_created", status: 201, org_id: body.org_id };
}

const invoiceOrgId = (invoice: Stripe.Invoice) =>
  metadataOrgId(invoice.parent?.subscription_details?.metadata, invoice.metadata, invoice.lines?.data?.[0]?.metadata);

/** A paid invoice restores a billing-suspended org (new key, emailed once); otherwise there is nothing to do. */
async function invoicePaid(event: Stripe.Event, env: PaymentEnv): Promise<Outcome> {
  const invoice = event.data.object as Stripe.Invoice;
  const orgId = invoiceOrgId(invoice);
  if (!orgId) return ignored(event, "no org_id in the metadata");
  const usage = await callOrgService(env, "ORG_USAGE_READ", "GET", `/v1/admin/org/${encodeURIComponent(orgId)}/usage`);
  if (usage.status !== 200) return finalRefusal(event, "usage_read", usage, orgId);
  if (usage.body.status !== "billing_suspended") return { action: "nothing_to_restore", status: 200, org_id: orgId, detail: usage.body.status };
  const answer = await callOrgService(env, "BILLING_ROTATE", "POST", `/v1/admin/billing/org/${encodeURIComponent(orgId)}/rotate`, { idempotencyKey: event.id });
  if (answer.status !== 200) return finalRefusal(event, "billing_rotate", answer, orgId);
  if (answer.body.new_api_key && invoice.customer_email) {
    try {
      await sendKeyEmail(env, invoice.customer_email, orgId, { client: answer.body.new_api_key, server: answer.body.new_server_api_key }, "rotated");
    } catch (err) {
      log({ level: "error", event_id: event.id, action: "key_email_failed", org_id: orgId, detail: String(err) });
    }
  }
  log({ level: "info", event_id: event.id, type: event.type, action: "billing_rotate", org_id: orgId, replayed: !answer.body.new_api_key });
  return { action: "billing_rotated", status: 200, org_id: orgId };
}

async function subscriptionDeleted(event: Stripe.Event, env: PaymentEnv): Promise<Outcome> {
  const sub = event.data.object as Stripe.Subscription;
  return billingSuspend(event, env, metadataOrgId(sub.metadata));
}

/** Dunning is exhausted when Stripe will not try the payment again. */
async function invoicePaymentFailed(event: Stripe.Event, env: PaymentEnv): Promise<Outcome> {
  const invoice = event.data.object as Stripe.Invoice;
  if (invoice.next_payment_attempt !== null) return { action: "dunning_continues", detail: `next attempt ${invoice.next_payment_attempt}` };
  return billingSuspend(event, env, invoiceOrgId(invoice));
}

async function disputeCreated(event: Stripe.Event, env: PaymentEnv): Promise<Outcome> {
  const dispute = event.data.object as Stripe.Dispute;
  const charge = typeof dispute.charge === "object" ? dispute.charge : null;
  return billingSuspend(event, env, metadataOrgId(dispute.metadata, charge?.metadata));
}

export const HANDLERS: Partial<Record<string, (event: Stripe.Event, env: PaymentEnv) => Promise<Outcome>>> = {
  "checkout.session.completed": checkoutCompleted,
  "invoice.paid": invoicePaid,
  "customer.subscription.deleted": subscriptionDeleted,
  "invoice.payment_failed": invoicePaymentFailed,
  "charge.dispute.created": disputeCreated,
};
