// Key verification for sibling workers. Hot path: a key seen in the last VERIFY_CACHE_TTL_MS is answered from this
// isolate's memory (no D1 read); a malformed key is refused before any hashing or lookup. Revocation, suspension
// and rotation made elsewhere take effect within the TTL (at once in the isolate that made them).
import type { Bindings } from "../lib/context";
import { currentPepper, parseKey, type KeyType } from "../lib/keys";
import { lookupOrgKey, orgKeyFailure } from "../lib/org-keys";
import { rateLimitsOff, rateLimitSubject } from "../lib/rate-limit";
import { usagePeriod } from "../lib/usage-period";
import { TIER_LIMITS, type Tier } from "../features/orgs/model";
import { countInteraction } from "./usage";

export const VERIFY_CACHE_TTL_MS = 30_000;
const MAX_CACHE_ENTRIES = 50_000;

export type VerifyFailureCode =
  | "malformed"
  | "unknown"
  | "revoked"
  | "org_inactive"
  | "origin_not_allowed"
  | "rate_limited"
  | "quota_exceeded";

export type VerifyResult =
  | { valid: true; org_id: string; tier: Tier; key_type: Exclude<KeyType, "kvqp">; prefix: string }
  | { valid: false; code: VerifyFailureCode };

interface CacheEntry {
  expires: number;
  failure: "unknown" | "revoked" | "org_inactive" | null;
  org_id: string | null;
  tier: Tier;
  key_type: Exclude<KeyType, "kvqp">;
  prefix: string;
  origins: Set<string>;
  /** Interactions this period: the count at cache fill plus this isolate's verifications since. */
  used: number;
}

const cache = new Map<string, CacheEntry>();

/** Drops every cached key of the org in this isolate (called by the handlers that change an org or its keys). */
export function forgetOrg(orgId: string) {
  for (const [hash, entry] of cache) if (entry.org_id === orgId) cache.delete(hash);
}

const fail = (code: VerifyFailureCode): VerifyResult => ({ valid: false, code });

async function load(env: Bindings, ctx: ExecutionContext, key: string, prefix: string, now: number): Promise<[string, CacheEntry]> {
  const { hashes, row } = await lookupOrgKey<{ used: number }>(env, key, (p) => ctx.waitUntil(p), {
    sql: "(SELECT COALESCE(SUM(u.count), 0) FROM usage_daily u WHERE u.org_id = o.org_id AND u.day >= ?) AS used",
    binds: [usagePeriod(now).startDay],
  });
  const entry: CacheEntry = {
    expires: now + VERIFY_CACHE_TTL_MS,
    failure: orgKeyFailure(row),
    org_id: row?.org_id ?? null,
    tier: (row?.tier ?? "starter") as Tier,
    key_type: (row?.key_type ?? "ck_live") as "ck_live",
    prefix,
    origins: new Set(row ? (JSON.parse(row.allowed_origins) as string[]) : []),
    used: row?.used ?? 0,
  };
  if (cache.size >= MAX_CACHE_ENTRIES) cache.clear();
  cache.set(hashes.current, entry);
  return [hashes.current, entry];
}

export async function verifyKey(env: Bindings, ctx: ExecutionContext, key: unknown, options: { origin?: string } = {}): Promise<VerifyResult> {
  const parsed = typeof key === "string" ? parseKey(key) : null;
  if (!parsed || parsed.type === "kvqp") return fail("malformed");
  const now = Date.now();
  // The per-key limit is keyed by type + prefix, known before hashing, so its round trip overlaps the HMAC and
  // any D1 lookup; its answer is only used once the key is known to be valid.
  const limited = rateLimitsOff(env) ? null : env.KEY_RATE_LIMITER.limit({ key: rateLimitSubject(parsed.type, parsed.prefix) });
  const hash = await (await currentPepper(env)).hash(key as string);
  let entry = cache.get(hash);
  if (!entry || entry.expires <= now) [, entry] = await load(env, ctx, key as string, parsed.prefix, now);
  if (entry.failure) return fail(entry.failure);

  const origin = options?.origin;
  if (origin !== undefined && origin !== null) {
    // A browser sent this key: only a client key, and only from one of the org's origins.
    if (entry.key_type !== "ck_live" || !entry.origins.has(origin)) return fail("origin_not_allowed");
  }
  if (limited && !(await limited).success) return fail("rate_limited");
  if (entry.used >= TIER_LIMITS[entry.tier]) return fail("quota_exceeded");

  entry.used++;
  countInteraction(env.USAGE_QUEUE, ctx, entry.org_id!, now);
  return { valid: true, org_id: entry.org_id!, tier: entry.tier, key_type: entry.key_type, prefix: entry.prefix };
}
