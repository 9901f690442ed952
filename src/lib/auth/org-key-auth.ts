// Org self-serve credentials: X-API-Key with the org's own key. Always read from D1 (no cache), so a rotated or
// revoked key fails on the very next request. Every failure answers the same 401 no sooner than 80 ms after the
// request arrived, whatever the reason (so timing tells nothing); success is not delayed.
import type { MiddlewareHandler, Next } from "hono";
import { auditFailure } from "../data/audit";
import type { AppContext, AppEnv } from "../http/context";
import { ApiError, unauthorized } from "../http/errors";
import { KEY_TYPES, type KeyType, parseKey } from "../keys/keys";
import { lookupOrgKey, orgKeyFailure } from "../keys/org-keys";
import { clientIp, enforceKeyRateLimit, orgKeyBucket } from "../http/rate-limit";
import { reportKeyUse } from "../data/usage-records";

export const AUTH_FAILURE_FLOOR_MS = 80;

/**
 * A route's way to answer a caller whose key was retired by that very route (e.g. a rotation retried after its
 * response was lost): given the key's row id and type, a replay response, or null to go on as usual.
 */
export type RetiredKeyReplay = (c: AppContext, key: { key_id: number; key_type: KeyType; org_id: string }) => Promise<Response | null>;

export const requireOrgKey: MiddlewareHandler<AppEnv> = (c, next) => orgKeyAuth(c, next);

/** requireOrgKey for a route that replays its own idempotent results to the key it retired. */
export const requireOrgKeyOrReplay =
  (replay: RetiredKeyReplay): MiddlewareHandler<AppEnv> =>
  (c, next) =>
    orgKeyAuth(c, next, replay);

async function orgKeyAuth(c: AppContext, next: Next, replay?: RetiredKeyReplay) {
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
      const principal = {
        key_id: row.key_id,
        org_id: row.org_id,
        key_type: row.key_type,
        key_prefix: keyPrefix,
        key_hash: hashes.current,
        retiring: row.expires_at !== null,
      };
      reportKeyUse(c.env.USAGE_QUEUE, c.executionCtx, row.key_id);
      await enforceKeyRateLimit(c, orgKeyBucket(row.org_id, row.key_type), { actor: `org:${row.org_id}`, org_id: row.org_id, key_prefix: keyPrefix });
      c.set("org", principal);
      return next();
    }
    reason = failure!;
    if (replay && row && failure === "revoked") {
      const replayed = await replay(c, { key_id: row.key_id, key_type: row.key_type, org_id: row.org_id });
      if (replayed) return replayed;
    }
  }
  const ip = clientIp(c);
  // Per IP and org: an org's own audit log shows the failures with its keys (revoked, suspended) apart.
  await auditFailure(
    c,
    { event_type: "AUTH_FAIL_ORG_KEY", actor: "anonymous", org_id: orgId, key_prefix: keyPrefix, ip, detail: `reason=${reason}` },
    `${ip ?? "binding"}|${orgId ?? "-"}`,
  );
  const wait = AUTH_FAILURE_FLOOR_MS - (performance.now() - started);
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  throw unauthorized();
}

/**
 * After requireOrgKey: only the org's server key (sk_live_) administers the org. A client key is publishable (it may
 * sit in a web page), so an authenticated client key here is 403 KEY_TYPE_NOT_ALLOWED, never an action.
 */
export const requireServerKey: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (c.get("org").key_type !== "sk_live") {
    throw new ApiError(
      403,
      "KEY_TYPE_NOT_ALLOWED",
      "This route needs the organization's server key (sk_live_…); a client key (ck_live_…) cannot administer the organization.",
    );
  }
  await next();
};

/**
 * After requireServerKey, on routes that rotate or revoke keys: a key in its overlap window (replaced by a rotation
 * with expire_previous_in_seconds) still authenticates, but controls nothing (403 KEY_RETIRING). So whoever still
 * holds a retiring key, often because it leaked, cannot revoke the owner's new key or mint one of their own.
 */
export const requireControllingKey =
  (replay?: RetiredKeyReplay): MiddlewareHandler<AppEnv> =>
  async (c, next) => {
    const me = c.get("org");
    if (me.retiring) {
      const replayed = replay ? await replay(c, me) : null;
      if (replayed) return replayed;
      // Someone tried to take control with a key being retired (often because it leaked): worth an audit row.
      await auditFailure(
        c,
        {
          event_type: "KEY_REFUSED_RETIRING",
          actor: `org:${me.org_id}`,
          org_id: me.org_id,
          key_prefix: me.key_prefix,
          ip: clientIp(c),
          detail: `path=${c.req.path.slice(0, 100)}`,
        },
        `${me.org_id}|${me.key_id}`,
      );
      throw keyRetiring();
    }
    await next();
  };

export const keyRetiring = () =>
  new ApiError(
    403,
    "KEY_RETIRING",
    "This key is in its overlap window after a rotation: it still authenticates until the window ends, but it cannot rotate or revoke keys. Use the organization's current server key.",
  );
