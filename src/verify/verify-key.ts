// Key verification for sibling workers. Hot path: a key seen recently is answered from this isolate's memory (no D1
// read); a malformed key is refused before any hashing or lookup.
//
// The revocation bound: a cached verdict is fresh for the refresh interval (VERIFY_REFRESH_SECONDS, default 5 s).
// Past it, it is served once more while it is refreshed in the background, but only within REFRESH_GRACE_MS (1 s);
// older than refresh + grace, the request waits for the reload. So a revocation, suspension or rotation made in
// another isolate is honoured everywhere within VERIFY_REFRESH_SECONDS + 1 s (6 s by default), and at once in the
// isolate that made it (forgetOrg). Loads read from the primary, never from a replica that may predate the
// revocation, and a load that started before a local forgetOrg never stores its (possibly older) verdict.
//
// Only a key that verified is counted against a limit: the per-key rate limit is taken after the lookup, in the
// bucket of the org and key type, so forged keys that share a victim's public prefix cannot exhaust it (docs/contract.md).
import type { Bindings } from "../lib/http/context";
import { currentPepper, parseKey, type KeyType } from "../lib/keys/keys";
import { lookupOrgKey, orgKeyFailure } from "../lib/keys/org-keys";
import { LruMap } from "../lib/util/lru";
import { orgKeyBucket, rateLimitsOff } from "../lib/http/rate-limit";
import { usagePeriod } from "../lib/util/usage-period";
import { TIER_LIMITS, type Tier } from "../features/orgs/model";
import { countInteraction, reportKeyUse } from "../lib/data/usage-records";

/** The longest refresh interval VERIFY_REFRESH_SECONDS may set. */
export const VERIFY_CACHE_TTL_MS = 30_000;
/** A verdict older than this is served once more while it is refreshed (VERIFY_REFRESH_SECONDS overrides it). */
export const DEFAULT_REFRESH_MS = 5_000;
/** How long past the refresh interval a verdict may still be served while it reloads; past it, requests wait. */
export const REFRESH_GRACE_MS = 1_000;
const MAX_CACHE_ENTRIES = 50_000;

export const refreshMs = (env: { VERIFY_REFRESH_SECONDS?: string }) => {
  const seconds = Number(env.VERIFY_REFRESH_SECONDS);
  return Number.isFinite(seconds) && seconds >= 0 ? Math.min(seconds * 1000, VERIFY_CACHE_TTL_MS) : DEFAULT_REFRESH_MS;
};

export type VerifyFailureCode = "malformed" | "unknown" | "revoked" | "org_inactive" | "origin_not_allowed" | "rate_limited" | "quota_exceeded";

export type VerifyResult =
  | { valid: true; org_id: string; tier: Tier; key_type: Exclude<KeyType, "kvqp">; prefix: string }
  | { valid: false; code: VerifyFailureCode };

interface CacheEntry {
  /** When the verdict was read from D1. */
  loadedAt: number;
  /** The end of the key's rotation window (ms), or null: past it the key fails as revoked, cached or not. */
  keyExpiresAt: number | null;
  failure: "unknown" | "revoked" | "org_inactive" | null;
  key_id: number;
  org_id: string | null;
  tier: Tier;
  key_type: Exclude<KeyType, "kvqp">;
  prefix: string;
  origins: Set<string>;
}

/**
 * Interactions of an org in the current period as this isolate knows them: D1's count at the last load, plus every
 * verification this isolate allowed since. One per org, shared by its keys. A reload never lowers it (D1 lags this
 * isolate by the usage pipeline's delay), so within one isolate the quota is exact.
 */
interface OrgUsage {
  startDay: string;
  used: number;
}

const cache = new LruMap<string, CacheEntry>(MAX_CACHE_ENTRIES);
/** Loads in flight, with the forget generation they started in. */
const loading = new Map<string, { promise: Promise<CacheEntry>; generation: number }>();
const usage = new LruMap<string, OrgUsage>(MAX_CACHE_ENTRIES);
/** Counts forgetOrg calls: a load that started before the latest one may have read what that change replaced. */
let generation = 0;

/** Drops every cached key of the org in this isolate (called by the handlers that change an org or its keys). */
export function forgetOrg(orgId: string) {
  generation++;
  for (const [hash, entry] of cache.entries()) if (entry.org_id === orgId) cache.delete(hash);
}

const fail = (code: VerifyFailureCode): VerifyResult => ({ valid: false, code });

function recordUsage(orgId: string, startDay: string, used: number) {
  const known = usage.get(orgId);
  if (known && known.startDay === startDay) known.used = Math.max(known.used, used);
  else usage.set(orgId, { startDay, used });
}

async function load(env: Bindings, ctx: ExecutionContext, key: string, prefix: string, now: number): Promise<CacheEntry> {
  const startedIn = generation;
  const period = usagePeriod(now);
  const { hashes, row } = await lookupOrgKey<{ used: number }>(env, key, (p) => ctx.waitUntil(p), {
    sql: "(SELECT COALESCE(SUM(u.count), 0) FROM usage_daily u WHERE u.org_id = o.org_id AND u.day >= ?) AS used",
    binds: [period.startDay],
  }); // from the primary (no session): a replica could predate the revocation we are refreshing for
  const entry: CacheEntry = {
    loadedAt: now,
    keyExpiresAt: row?.expires_at ? Date.parse(row.expires_at) : null,
    failure: orgKeyFailure(row, new Date(now).toISOString()),
    key_id: row?.key_id ?? 0,
    org_id: row?.org_id ?? null,
    tier: (row?.tier ?? "starter") as Tier,
    key_type: (row?.key_type ?? "ck_live") as "ck_live",
    prefix,
    origins: new Set(row ? (JSON.parse(row.allowed_origins) as string[]) : []),
  };
  if (row) recordUsage(row.org_id, period.startDay, row.used);
  // A change to some org was made in this isolate while we read: ours may be the verdict it replaced. Answer this
  // request with it (it raced the change), but never keep it.
  if (startedIn === generation) cache.set(hashes.current, entry);
  return entry;
}

/** One D1 load per key at a time in this isolate: concurrent cold verifications of a key share it. */
function loadOnce(env: Bindings, ctx: ExecutionContext, hash: string, key: string, prefix: string, now: number): Promise<CacheEntry> {
  const inFlight = loading.get(hash);
  if (inFlight && inFlight.generation === generation) return inFlight.promise;
  const pending = { promise: load(env, ctx, key, prefix, now), generation };
  loading.set(hash, pending);
  pending.promise.finally(() => loading.get(hash) === pending && loading.delete(hash)).catch(() => {});
  return pending.promise;
}

export async function verifyKey(env: Bindings, ctx: ExecutionContext, key: unknown, options: { origin?: string } = {}): Promise<VerifyResult> {
  const parsed = typeof key === "string" ? parseKey(key) : null;
  if (!parsed || parsed.type === "kvqp") return fail("malformed");
  const now = Date.now();
  const hash = await (await currentPepper(env)).hash(key as string);
  const period = usagePeriod(now);
  let entry = cache.get(hash);
  const refresh = refreshMs(env);
  // A new period (the first verification after midnight UTC) reloads too: the count must be this period's.
  if (!entry || now - entry.loadedAt >= refresh + REFRESH_GRACE_MS || (entry.org_id !== null && usage.get(entry.org_id)?.startDay !== period.startDay)) {
    entry = await loadOnce(env, ctx, hash, key as string, parsed.prefix, now);
  } else if (now - entry.loadedAt >= refresh) {
    // Stale: answer from it now, and have the next request see what D1 says (one refresh per key at a time).
    ctx.waitUntil(loadOnce(env, ctx, hash, key as string, parsed.prefix, now).catch(() => {}));
  }
  if (entry.failure) return fail(entry.failure);
  if (entry.keyExpiresAt !== null && now >= entry.keyExpiresAt) return fail("revoked"); // its rotation window ended

  const origin = options?.origin;
  if (origin !== undefined && origin !== null) {
    // A browser sent this key: only a client key, and only from one of the org's origins.
    if (entry.key_type !== "ck_live" || !entry.origins.has(origin)) return fail("origin_not_allowed");
  }
  if (!rateLimitsOff(env) && !(await env.KEY_RATE_LIMITER.limit({ key: orgKeyBucket(entry.org_id!, entry.key_type) })).success) return fail("rate_limited");

  // Check and count with no await in between: concurrent verifications in this isolate cannot both take the last one.
  const orgId = entry.org_id!;
  recordUsage(orgId, period.startDay, 0); // only if the record was dropped since the load (the map is bounded)
  const orgUsage = usage.get(orgId)!;
  if (orgUsage.used >= TIER_LIMITS[entry.tier]) return fail("quota_exceeded");
  orgUsage.used++;
  countInteraction(env.USAGE_QUEUE, ctx, orgId, now);
  reportKeyUse(env.USAGE_QUEUE, ctx, entry.key_id, now);
  return { valid: true, org_id: orgId, tier: entry.tier, key_type: entry.key_type, prefix: entry.prefix };
}
