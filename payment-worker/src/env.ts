import type { BillingRpc } from "../../src/billing/entrypoint";

export interface PaymentEnv {
  /** The service's billing entrypoint (`entrypoint = "BillingService"`): the binding is the credential. */
  BILLING: BillingRpc;
  /** The payment worker's own state: accounts, payments, processed event ids (migrations in ./migrations). */
  DB: D1Database;
  EMAIL: SendEmail;
  EMAIL_FROM: string;
  STRIPE_WEBHOOK_SECRET: string;
}
