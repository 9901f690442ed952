// Org self-serve credentials: X-API-Key with the org's own key. Always read from D1 (no cache), so a rotated or
// revoked key fails on the very next request. Every failure answers the same 401 no sooner than 80 ms after the
// request arrived, whatever the reason (so timing tells nothing); success is not delayed.
import type { MiddlewareHandler } from "hono";
import { auditFailure } from "../data/audit";
import type { AppEnv } from "../http/context";
import { ApiError, unauthorized } from "../http/errors";
import { KEY_TYPES, parseKey } from "../keys/keys";
import { lookupOrgKey, orgKeyFailure } from "../keys/org-keys";
import { clientIp, enforceKeyRateLimit, rateLimitSubject } from "../http/rate-limit";
import { reportKeyUse } from "../../verify/usage";

export const AUTH_FAILURE_FLOOR_MS = 80;

export const requireOrgKey: MiddlewareHandler<AppEnv> = async (c, next) => {
  const started = performance.now();
  const presented = c.req.header("x-api-key");
  const parsed = presented ? parseKey(presented) : null;
  let reason: string;
  let orgId: string | null = null;
  let keyPrefix: string | null = null;
  if (!presented) reason = "missing";
  else if (!parsed || parsed.type === "kvqp") reason = "malformed";
  else {
    keyPrefix = KEY_TYPES[parsed.type] + parsed.prefix;
    const { hashes, row } = await lookupOrgKey(c.env, presented, (p) => c.executionCtx.waitUntil(p));
    const failure = orgKeyFailure(row);
    orgId = row?.org_id ?? null;
    if (!failure && row) {
      const principal = { key_id: row.key_id, org_id: row.org_id, key_type: row.key_type, key_prefix: keyPrefix, key_hash: hashes.current };
      reportKeyUse(c.env.USAGE_QUEUE, c.executionCtx, row.key_id);
      await enforceKeyRateLimit(c, rateLimitSubject(row.key_id), { actor: `org:${row.org_id}`, org_id: row.org_id, key_prefix: keyPrefix });
      c.set("org", principal);
      return next();
    }
    reason = failure!;
  }
  const ip = clientIp(c);
  // Per IP and org: an org's own audit log shows the failures with its keys (revoked, suspended) apart.
  await auditFailure(c, { event_type: "AUTH_FAIL_ORG_KEY", actor: "anonymous", org_id: orgId, key_prefix: keyPrefix, ip, detail: `reason=${reason}` }, `${ip ?? "binding"}|${orgId ?? "-"}`);
  const wait = AUTH_FAILURE_FLOOR_MS - (performance.now() - started);
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  throw unauthorized();
};

/**
 * After requireOrgKey: only the org's server key (sk_live_) administers the org. A client key is publishable (it may
 * sit in a web page), so an authenticated client key here is 403 KEY_TYPE_NOT_ALLOWED, never an action.
 */
export const requireServerKey: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (c.get("org").key_type !== "sk_live") {
    throw new ApiError(403, "KEY_TYPE_NOT_ALLOWED", "This route needs the organization's server key (sk_live_…); a client key (ck_live_…) cannot administer the organization.");
  }
  await next();
};
