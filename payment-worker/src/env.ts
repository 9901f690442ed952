// The payment worker's bindings: generated from payment-worker/wrangler.toml by `npm run cf-typegen` (the global
// PaymentEnv in payment-worker/worker-configuration.d.ts), with BILLING typed from the service's BillingService class.
type GeneratedPaymentEnv = PaymentEnv;
export type { GeneratedPaymentEnv as PaymentEnv };
