// Partner credentials: X-Kelviq-Partner-Key (kvqp_…), looked up by peppered hash. A successful lookup is cached in
// this isolate for PARTNER_CACHE_TTL_MS (never past the key's own rotation window); rotate-key and deactivate drop
// the partner's entries here at once, and other isolates' entries expire within the TTL.
import type { MiddlewareHandler } from "hono";
import { auditFailure } from "../data/audit";
import type { AppEnv } from "../http/context";
import type { PartnerPrincipal } from "./principals";
import { unauthorized } from "../http/errors";
import { hashBinds, keyHashes, rehashStatement } from "../keys/key-lookup";
import { parseKey } from "../keys/keys";
import { LruMap } from "../util/lru";
import { keyRowFailure } from "../keys/rotation";
import { reportKeyUse } from "../data/usage-records";
import { clientIp, enforceKeyRateLimit, partnerKeyBucket } from "../http/rate-limit";

export const PARTNER_CACHE_TTL_MS = 10_000;
const MAX_CACHE_ENTRIES = 10_000;

const cache = new LruMap<string, PartnerPrincipal & { expires: number }>(MAX_CACHE_ENTRIES);

export function forgetPartner(partnerId: string) {
  for (const [hash, entry] of cache.entries()) if (entry.partner_id === partnerId) cache.delete(hash);
}

interface PartnerKeyRow {
  id: number;
  key_hash: string;
  partner_id: string;
  revoked_at: string | null;
  expires_at: string | null;
  active: number;
}

export const requirePartnerKey: MiddlewareHandler<AppEnv> = async (c, next) => {
  const presented = c.req.header("x-kelviq-partner-key");
  const parsed = presented ? parseKey(presented) : null;
  let reason: string;
  let keyPrefix: string | null = null;
  if (!presented) reason = "missing";
  else if (parsed?.type !== "kvqp") reason = "malformed";
  else {
    keyPrefix = `kvqp_${parsed.prefix}`;
    const hashes = await keyHashes(c.env, presented);
    const cached = cache.get(hashes.current);
    const accept = async (principal: PartnerPrincipal) => {
      reportKeyUse(c.env.USAGE_QUEUE, c.executionCtx, principal.key_id);
      await enforceKeyRateLimit(c, partnerKeyBucket(principal.partner_id), { actor: `partner:${principal.partner_id}`, key_prefix: principal.key_prefix });
      c.set("partner", principal);
      return next();
    };
    if (cached && cached.expires > Date.now()) {
      return accept({ partner_id: cached.partner_id, key_id: cached.key_id, key_prefix: cached.key_prefix });
    }
    const row = await c.env.DB.prepare(
      `SELECT k.id, k.key_hash, k.revoked_at, k.expires_at, p.partner_id, p.active
         FROM api_keys k JOIN partners p ON p.partner_id = k.partner_id
        WHERE k.key_hash IN (?, ?) AND k.key_type = 'kvqp'`,
    )
      .bind(...hashBinds(hashes))
      .first<PartnerKeyRow>();
    if (!row) reason = "unknown";
    else if (keyRowFailure(row)) reason = "revoked";
    else if (!row.active) reason = "partner_inactive";
    else {
      if (row.key_hash !== hashes.current) c.executionCtx.waitUntil(rehashStatement(c.env.DB, row.id, hashes).run());
      const principal = { partner_id: row.partner_id, key_id: row.id, key_prefix: keyPrefix };
      const windowEnd = row.expires_at ? Date.parse(row.expires_at) : Infinity;
      cache.set(hashes.current, { ...principal, expires: Math.min(Date.now() + PARTNER_CACHE_TTL_MS, windowEnd) });
      return accept(principal);
    }
  }
  const ip = clientIp(c);
  await auditFailure(c, { event_type: "AUTH_FAIL_PARTNER_KEY", actor: "anonymous", key_prefix: keyPrefix, ip, detail: `reason=${reason}` }, ip ?? "binding");
  throw unauthorized();
};
