// Scoped master keys: one secret per scope, sent in X-API-Key, compared in constant time.
import type { MiddlewareHandler } from "hono";
import { auditFailure } from "../data/audit";
import type { AppContext, AppEnv, Bindings } from "../http/context";
import { unauthorized } from "../http/errors";
import { timingSafeEqualStrings } from "../keys/keys";
import { clientIp } from "../http/rate-limit";

export const MASTER_SCOPES = [
  "ORG_CREATE",
  "BILLING_SUSPEND",
  "BILLING_ROTATE",
  "ORG_USAGE_READ",
  "ORG_SUSPEND",
  "ORG_REACTIVATE",
  "ORG_FORCE_ROTATE",
  "ORG_FORCE_REVOKE",
  "PARTNER_ADMIN",
] as const;
export type MasterScope = (typeof MASTER_SCOPES)[number];

export const masterKeySecretName = (scope: MasterScope) => `MASTER_ADMIN_KEY_${scope}` as const;

/**
 * Set in the env of a request only by the BillingService entrypoint (a symbol: nothing from outside this Worker can
 * name it, and env never comes from a request). Its value is the one scope that call may use.
 */
export const BILLING_RPC = Symbol("billing-rpc");
/** The scopes the billing entrypoint may use; every other scope still needs its master key. */
export const BILLING_RPC_SCOPES: readonly MasterScope[] = ["ORG_CREATE", "BILLING_SUSPEND", "BILLING_ROTATE", "ORG_USAGE_READ"];

/** The call came through the billing entrypoint (the payment worker's binding), not over HTTPS. */
export const viaBillingBinding = (c: AppContext) => (c.env as unknown as Record<symbol, unknown>)[BILLING_RPC] !== undefined;

/**
 * The idempotency namespace of a master-key route: binding calls (keyed by Stripe event ids) get their own, so an
 * operator's HTTPS Idempotency-Key can never collide with, replay, or block one of the payment worker's.
 */
export const masterIdempotencyEndpoint = (c: AppContext, route: string) => (viaBillingBinding(c) ? `binding ${route}` : route);

/**
 * Accepts only this scope's secret. Missing, wrong, another scope's key, or an unset secret (fail closed):
 * the uniform 401, and an AUTH_FAIL_MASTER_KEY audit row naming the scope (never the key).
 */
export const requireMasterKey =
  (scope: MasterScope): MiddlewareHandler<AppEnv> =>
  async (c, next) => {
    const viaBinding = (c.env as unknown as Record<symbol, unknown>)[BILLING_RPC];
    if (viaBinding === scope && BILLING_RPC_SCOPES.includes(scope)) return next();
    const expected = (c.env as Bindings & Record<string, string | undefined>)[masterKeySecretName(scope)];
    const given = c.req.header("x-api-key");
    const ok = !!expected && given !== undefined && (await timingSafeEqualStrings(given, expected));
    if (!ok) {
      const ip = clientIp(c);
      const detail = `scope=${scope}${given === undefined ? " reason=missing" : ""}`;
      await auditFailure(c, { event_type: "AUTH_FAIL_MASTER_KEY", actor: "anonymous", ip, detail }, `${ip ?? "binding"}|${detail}`);
      throw unauthorized();
    }
    await next();
  };
