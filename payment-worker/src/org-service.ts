// The org service, reached with fetch through the service binding: the same HTTP contract (master keys, Idempotency-
// Key, error envelope, audit) every other caller uses, with no public network hop. A 5xx, a 429 or no answer at all
// is transient (the webhook answers 5xx so Stripe retries); any other 4xx is final (logged and acknowledged).
import type { PaymentEnv } from "./env";

export class TransientServiceError extends Error {}

export interface ServiceAnswer {
  status: number;
  body: Record<string, any>;
}

type Scope = "ORG_CREATE" | "BILLING_SUSPEND" | "BILLING_ROTATE" | "ORG_USAGE_READ";

export async function callOrgService(
  env: PaymentEnv,
  scope: Scope,
  method: "GET" | "POST",
  path: string,
  options: { idempotencyKey?: string; json?: unknown } = {},
): Promise<ServiceAnswer> {
  const headers: Record<string, string> = { "X-API-Key": env[`MASTER_ADMIN_KEY_${scope}`] };
  if (options.idempotencyKey) headers["Idempotency-Key"] = options.idempotencyKey;
  if (options.json !== undefined) headers["Content-Type"] = "application/json";
  let res: Response;
  try {
    // The host is ignored by a service binding; it only makes the URL absolute.
    res = await env.ORG_SERVICE.fetch(`https://org-key-authority${path}`, {
      method,
      headers,
      body: options.json === undefined ? undefined : JSON.stringify(options.json),
    });
  } catch (err) {
    throw new TransientServiceError(`org service unreachable: ${err instanceof Error ? err.message : err}`);
  }
  if (res.status >= 500 || res.status === 429) {
    throw new TransientServiceError(`org service answered ${res.status} on ${method} ${path}`);
  }
  const body = (await res.json().catch(() => ({}))) as Record<string, any>;
  return { status: res.status, body };
}
