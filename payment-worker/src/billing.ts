// Calls into the service's BillingService entrypoint over RPC. The same routes as the HTTP API run behind it (same
// validation, batch, audit and idempotency, with the Stripe event id as the Idempotency-Key). A thrown RPC error, a
// 5xx or a 429 is transient (the webhook answers 5xx so Stripe retries); any other 4xx is final (logged, acknowledged).
import type { BillingAnswer } from "../../src/billing/entrypoint";
import type { PaymentEnv } from "./env";

export class TransientServiceError extends Error {}

export type { BillingAnswer };

export async function callBilling(what: string, call: (billing: PaymentEnv["BILLING"]) => Promise<BillingAnswer>, env: PaymentEnv): Promise<BillingAnswer> {
  let answer: BillingAnswer;
  try {
    answer = await call(env.BILLING);
  } catch (err) {
    throw new TransientServiceError(`org service unreachable on ${what}: ${err instanceof Error ? err.message : err}`);
  }
  if (answer.status >= 500 || answer.status === 429) throw new TransientServiceError(`org service answered ${answer.status} on ${what}`);
  return answer;
}
