// Calls into the service's BillingService entrypoint over RPC. The same routes as the HTTP API run behind it (same
// validation, batch, audit and idempotency, with the Stripe event id as the Idempotency-Key). A thrown RPC error, a
// 5xx or a 429 is transient (the webhook answers 5xx so Stripe retries); any other 4xx is final (logged, acknowledged).
import type { BillingAnswer, BillingRpc } from "../../src/billing/entrypoint";
import type { PaymentEnv } from "./env";

export class TransientServiceError extends Error {}

export type { BillingAnswer };

/**
 * env.BILLING is `Service<BillingService>` (generated); calls are typed by the service's own BillingRpc interface,
 * which BillingService implements (RPC's mapped result types of a JSON body recurse too deep for the compiler).
 */
export async function callBilling(what: string, call: (billing: BillingRpc) => Promise<BillingAnswer>, env: PaymentEnv): Promise<BillingAnswer> {
  let answer: BillingAnswer;
  try {
    answer = await call(env.BILLING as unknown as BillingRpc);
  } catch (err) {
    throw new TransientServiceError(`org service unreachable on ${what}: ${err instanceof Error ? err.message : err}`);
  }
  if (answer.status >= 500 || answer.status === 429) throw new TransientServiceError(`org service answered ${answer.status} on ${what}`);
  return answer;
}
