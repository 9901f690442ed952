// Rate limits with the Workers rate-limiting bindings: per client IP before auth on every route, and per key after
// auth on partner and org-key routes (master-key routes skip the per-key limit). Limits live in wrangler.toml.
// Cloudflare's edge sets CF-Connecting-IP on every request from the internet; a request without it came through a
// service binding (the payment worker, an ops console): it has no client IP to count and skips the IP limit, and
// still needs its credential like any other request.
import type { MiddlewareHandler } from "hono";
import { auditFailure } from "../data/audit";
import type { AppContext, AppEnv } from "./context";
import { ApiError } from "./errors";

/** The binding counts in windows of `period` seconds: retrying after one window is always safe. */
export const RETRY_AFTER_SECONDS = 60;

const rateLimited = () => new ApiError(429, "RATE_LIMITED", "Too many requests; retry later.", undefined, { "Retry-After": String(RETRY_AFTER_SECONDS) });

/** The client's IP, or null for a request through a service binding. */
export const clientIp = (c: AppContext): string | null => c.req.header("cf-connecting-ip") ?? null;

/** RATE_LIMITS = "off" skips the limiter calls: for local benchmarks only (never set it in production). */
export const rateLimitsOff = (env: { RATE_LIMITS?: string }) => env.RATE_LIMITS === "off";

export const ipRateLimit: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (rateLimitsOff(c.env)) return next();
  const ip = clientIp(c);
  if (ip === null) return next();
  const { success } = await c.env.IP_RATE_LIMITER.limit({ key: `ip:${ip}` });
  if (!success) {
    await auditFailure(c, { event_type: "AUTH_FAIL_RATE_LIMITED_IP", actor: "anonymous", ip, detail: `path=${c.req.path.slice(0, 200)}` }, ip);
    throw rateLimited();
  }
  await next();
};

/**
 * Per-key buckets are named by what only a holder of a valid key can make us count against (a forged key with the
 * same public prefix fails before any limiter call), never by a public prefix, the key or its hash. A rotation
 * chain shares its bucket: an org's keys of one type, or a partner's keys, so rotating does not refill the limit.
 */
export const orgKeyBucket = (orgId: string, keyType: string) => `org:${orgId}:${keyType}`;
export const partnerKeyBucket = (partnerId: string) => `partner:${partnerId}`;

/** After auth: `subject` names the key (never the key itself), `audit` describes it for the audit row. */
export async function enforceKeyRateLimit(c: AppContext, subject: string, audit: { actor: string; org_id?: string | null; key_prefix: string }) {
  if (rateLimitsOff(c.env)) return;
  const { success } = await c.env.KEY_RATE_LIMITER.limit({ key: subject });
  if (success) return;
  await auditFailure(c, { event_type: "AUTH_FAIL_RATE_LIMITED_KEY", ...audit, ip: clientIp(c) }, subject);
  throw rateLimited();
}
