import type { BillingRpc } from "../../src/billing/entrypoint";

export interface PaymentEnv {
  /** The service's billing entrypoint (`entrypoint = "BillingService"`): the binding is the credential. */
  BILLING: BillingRpc;
  /** The payment worker's own state: accounts, payments, processed event ids (migrations in ./migrations). */
  DB: D1Database;
  STRIPE_WEBHOOK_SECRET: string;
  /** A restricted Stripe key that may read Checkout Sessions (their line items), nothing else. */
  STRIPE_API_KEY: string;
  /** Where the Stripe SDK sends its calls: https://api.stripe.com, or a local stand-in. */
  STRIPE_API_BASE: string;
  /** JSON: Stripe price id → tier. What a checkout bought decides the tier, never its metadata. */
  PRICE_TIERS: string;
}
