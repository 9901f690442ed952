// Rotation with overlap (expire_previous_in_seconds), the key inventory, last-used times, and revocations that reach
// every isolate's cache within the refresh bound.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { DEFAULT_REFRESH_MS, forgetOrg, REFRESH_GRACE_MS, verifyKey } from "../src/verify/verify-key";
import {
  act,
  asOrg,
  call,
  createPartner,
  dumpDatabase,
  makeOrg,
  MASTER,
  PARTNER_ORGS,
  partnerGet,
  PLAINTEXT_KEY_PATTERN,
  provision,
  provisionBody,
  uniq,
} from "./helpers";

afterEach(() => vi.restoreAllMocks());

async function verify(key: string) {
  const ctx = createExecutionContext();
  const result = await verifyKey(env as never, ctx, key);
  await waitOnExecutionContext(ctx);
  return result;
}
/** Moves this isolate's clock (the Worker runs here too) by `ms` from now. */
const later = (ms: number) => vi.spyOn(Date, "now").mockReturnValue(Date.now() + ms);
const selfRotate = (serverKey: string, body: Record<string, unknown>) => call("/v1/admin/key/rotate", { headers: { "x-api-key": serverKey }, json: body });
const partnerRotate = (partnerKey: string, identifier: string, body?: Record<string, unknown>) =>
  call(`${PARTNER_ORGS}/${identifier}/rotate-keys/`, { method: "POST", headers: { "x-kelviq-partner-key": partnerKey }, json: body });
const keys = (serverKey: string) => asOrg(serverKey, "/v1/admin/keys");

describe("rotation with overlap: both keys work inside the window, the old one fails after it", () => {
  it("self-serve: the old server key and the old client key, over HTTP and in verifyKey", async () => {
    const org = await makeOrg();
    const sk = await (await selfRotate(org.server_api_key, { expire_previous_in_seconds: 3600 })).json<any>();
    const ck = await (await selfRotate(sk.new_api_key, { key_type: "ck_live", expire_previous_in_seconds: 3600 })).json<any>();
    expect((await asOrg(org.server_api_key, "/v1/admin/keys")).status).toBe(200);
    expect((await asOrg(sk.new_api_key, "/v1/admin/keys")).status).toBe(200);
    expect(await verify(org.api_key)).toMatchObject({ valid: true });
    expect(await verify(ck.new_api_key)).toMatchObject({ valid: true });
    // Neither the new keys nor the ones in their window are stored in plaintext anywhere.
    const dump = await dumpDatabase();
    for (const key of [org.server_api_key, org.api_key, sk.new_api_key, ck.new_api_key]) expect(dump).not.toContain(key);
    later(3601_000);
    const expired = await asOrg(org.server_api_key, "/v1/admin/keys");
    expect(expired.status).toBe(401);
    expect(await expired.json<any>()).toMatchObject({ error: "UNAUTHORIZED", message: "Missing or invalid credentials." }); // exactly as a revoked key
    expect((await asOrg(sk.new_api_key, "/v1/admin/keys")).status).toBe(200);
    expect(await verify(org.api_key)).toEqual({ valid: false, code: "revoked" });
    expect(await verify(ck.new_api_key)).toMatchObject({ valid: true });
  });

  it("partner rotate-keys: old client and server keys live on for the window", async () => {
    const partner = await createPartner();
    const p = await (await provision(partner.partner_key, provisionBody())).json<any>();
    const res = await partnerRotate(partner.partner_key, p.organizationIdentifier, { expire_previous_in_seconds: 600 });
    expect(res.status).toBe(200);
    const rotated = await res.json<any>();
    expect(await dumpDatabase()).not.toMatch(PLAINTEXT_KEY_PATTERN);
    expect((await asOrg(p.serverKey, "/v1/admin/keys")).status).toBe(200);
    expect(await verify(p.clientKey)).toMatchObject({ valid: true });
    expect(await verify(rotated.clientKey)).toMatchObject({ valid: true });
    later(601_000);
    expect((await asOrg(p.serverKey, "/v1/admin/keys")).status).toBe(401);
    expect(await verify(p.clientKey)).toEqual({ valid: false, code: "revoked" });
    expect((await asOrg(rotated.serverKey, "/v1/admin/keys")).status).toBe(200);
  });

  it("operator partner rotate-key: the old partner key works for the window", async () => {
    const partner = await createPartner();
    const res = await call(`/v1/admin/partners/${partner.partner_id}/rotate-key`, {
      headers: { "x-api-key": MASTER.PARTNER_ADMIN, "idempotency-key": uniq() },
      json: { expire_previous_in_seconds: 120 },
    });
    expect(res.status).toBe(200);
    const { partner_key } = await res.json<any>();
    expect((await partnerGet(partner.partner_key, `${PARTNER_ORGS}/`)).status).toBe(200);
    expect((await partnerGet(partner_key, `${PARTNER_ORGS}/`)).status).toBe(200);
    later(121_000);
    expect((await partnerGet(partner.partner_key, `${PARTNER_ORGS}/`)).status).toBe(401);
    expect((await partnerGet(partner_key, `${PARTNER_ORGS}/`)).status).toBe(200);
  });

  it("default 0 keeps today's behaviour: the old key fails on the next request", async () => {
    const org = await makeOrg();
    await selfRotate(org.server_api_key, {});
    expect((await asOrg(org.server_api_key, "/v1/admin/keys")).status).toBe(401);
  });

  it("a second rotation during a window ends the first window at once: at most two live keys of a type", async () => {
    const org = await makeOrg();
    const first = await (await selfRotate(org.server_api_key, { key_type: "ck_live", expire_previous_in_seconds: 3600 })).json<any>();
    const second = await (await selfRotate(org.server_api_key, { key_type: "ck_live", expire_previous_in_seconds: 3600 })).json<any>();
    expect(await verify(org.api_key)).toEqual({ valid: false, code: "revoked" });
    expect(await verify(first.new_api_key)).toMatchObject({ valid: true });
    expect(await verify(second.new_api_key)).toMatchObject({ valid: true });
    const live = await env.DB.prepare("SELECT COUNT(*) AS n FROM api_keys WHERE org_id = ? AND key_type = 'ck_live' AND revoked_at IS NULL")
      .bind(org.org_id)
      .first<{ n: number }>();
    expect(live!.n).toBe(2);
  });

  it("422 for a window outside 0…604,800 seconds or not an integer (400 on the partner route)", async () => {
    const org = await makeOrg();
    for (const bad of [-1, 604_801, 1.5, "60"]) {
      const res = await selfRotate(org.server_api_key, { expire_previous_in_seconds: bad });
      expect(res.status, String(bad)).toBe(422);
      expect((await res.json<any>()).details[0].field).toBe("expire_previous_in_seconds");
    }
    const partner = await createPartner();
    const p = await (await provision(partner.partner_key, provisionBody())).json<any>();
    const partnerBad = await partnerRotate(partner.partner_key, p.organizationIdentifier, { expire_previous_in_seconds: 604_801 });
    expect(partnerBad.status).toBe(400);
    expect(await partnerBad.json<any>()).toMatchObject({ error: "VALIDATION_FAILED", details: [{ location: "body", field: "expire_previous_in_seconds" }] });
    expect((await selfRotate(org.server_api_key, { expire_previous_in_seconds: 604_800 })).status).toBe(200);
  });
});

describe("compromise paths take no window", () => {
  for (const path of ["force-rotate", "force-revoke", "billing-suspend", "self-serve revoke"] as const) {
    it(`${path} kills a key still inside its rotation window at once`, async () => {
      const org = await makeOrg();
      const rotated = await (await selfRotate(org.server_api_key, { key_type: "ck_live", expire_previous_in_seconds: 3600 })).json<any>();
      expect(await verify(org.api_key)).toMatchObject({ valid: true });
      if (path === "self-serve revoke") {
        expect((await call("/v1/admin/key/revoke", { headers: { "x-api-key": org.server_api_key }, json: { key_type: "ck_live" } })).status).toBe(200);
      } else {
        expect((await act(path, org.org_id)).status).toBe(200);
      }
      const expect401or = await verify(org.api_key);
      expect(expect401or.valid).toBe(false);
      expect((await verify(rotated.new_api_key)).valid).toBe(false);
    });
  }
});

describe("GET /v1/admin/keys: the inventory", () => {
  it("newest first with status, times and last use; never a hash or a plaintext; client keys get 403", async () => {
    const org = await makeOrg();
    const rotated = await (await selfRotate(org.server_api_key, { key_type: "ck_live", expire_previous_in_seconds: 600 })).json<any>();
    await verify(rotated.new_api_key);
    const res = await keys(org.server_api_key);
    expect(res.status).toBe(200);
    const json = await res.json<any>();
    expect(json.results.map((k: any) => [k.key_type, k.prefix, k.status])).toEqual([
      ["ck_live", rotated.prefix, "active"],
      ["sk_live", org.server_prefix, "active"],
      ["ck_live", org.prefix, "expiring"],
    ]);
    expect(json.results[2].expires_at).toEqual(expect.any(String));
    const text = JSON.stringify(json);
    expect(text).not.toMatch(/[0-9a-f]{64}/);
    expect(text).not.toContain(org.server_api_key);
    expect(Object.keys(json.results[0]).sort()).toEqual(["created_at", "expires_at", "key_type", "last_used_at", "prefix", "revoked_at", "status"]);
    // After the window: expired; after a revoke: revoked.
    later(601_000);
    await call("/v1/admin/key/revoke", { headers: { "x-api-key": org.server_api_key }, json: { key_type: "ck_live" } });
    const after = await (await keys(org.server_api_key)).json<any>();
    expect(after.results.map((k: any) => k.status)).toEqual(["revoked", "active", "expired"]);
    expect((await asOrg(org.api_key, "/v1/admin/keys")).status).toBe(401); // expired: fails as a revoked key does
    expect((await asOrg(rotated.new_api_key, "/v1/admin/keys")).status).toBe(401); // revoked
  });

  it("last_used_at (minute precision) follows verifications and authentications through the usage pipeline", async () => {
    const org = await makeOrg();
    await verify(org.api_key);
    await asOrg(org.server_api_key, "/v1/admin/audit-log");
    let results: any[] = [];
    for (let i = 0; i < 80; i++) {
      results = (await (await keys(org.server_api_key)).json<any>()).results;
      if (results.every((k) => k.last_used_at)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const minute = new Date().toISOString().slice(0, 16);
    for (const k of results) expect(k.last_used_at, k.key_type).toMatch(new RegExp(`^${minute.slice(0, 13)}:\\d\\d:00\\.000Z$`));
  });

  it("partner reads show clientKeyLastUsedAt and serverKeyLastUsedAt", async () => {
    const partner = await createPartner();
    const p = await (await provision(partner.partner_key, provisionBody())).json<any>();
    const before = await (await partnerGet(partner.partner_key, `${PARTNER_ORGS}/${p.organizationIdentifier}/`)).json<any>();
    expect(before).toMatchObject({ clientKeyLastUsedAt: null, serverKeyLastUsedAt: null });
    await verify(p.clientKey);
    let read: any;
    for (let i = 0; i < 80; i++) {
      read = await (await partnerGet(partner.partner_key, `${PARTNER_ORGS}/${p.organizationIdentifier}/`)).json<any>();
      if (read.clientKeyLastUsedAt) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(read.clientKeyLastUsedAt).toMatch(/:00\.000Z$/);
    expect(read.serverKeyLastUsedAt).toBeNull();
    const list = await (await partnerGet(partner.partner_key, `${PARTNER_ORGS}/?external_id=${encodeURIComponent(p.partnerExternalId)}`)).json<any>();
    expect(list.results[0]).toHaveProperty("clientKeyLastUsedAt", read.clientKeyLastUsedAt);
  });
});

describe("revocation has a hard bound: VERIFY_REFRESH_SECONDS + 1 s", () => {
  const revokeElsewhere = (orgId: string) => env.DB.prepare("UPDATE api_keys SET revoked_at = ? WHERE org_id = ?").bind(new Date().toISOString(), orgId).run();

  it("inside the grace a stale verdict is served once while it refreshes; then the revoke shows", async () => {
    const org = await makeOrg();
    const loadedAt = Date.now();
    expect((await verify(org.api_key)).valid).toBe(true);
    await revokeElsewhere(org.org_id); // in another isolate: this one's cache still says valid
    expect((await verify(org.api_key)).valid).toBe(true); // fresh: 0 D1 round trips, the hot path
    vi.spyOn(Date, "now").mockReturnValue(loadedAt + DEFAULT_REFRESH_MS + REFRESH_GRACE_MS / 2);
    expect(await verify(org.api_key), "stale within grace").toMatchObject({ valid: true }); // stale but within the grace: served, refreshed meanwhile
    expect(await verify(org.api_key)).toEqual({ valid: false, code: "revoked" });
  });

  it("past refresh + grace a verdict is never served: the request waits for the reload", async () => {
    const org = await makeOrg();
    expect((await verify(org.api_key)).valid).toBe(true);
    await revokeElsewhere(org.org_id);
    later(DEFAULT_REFRESH_MS + REFRESH_GRACE_MS);
    expect(await verify(org.api_key)).toEqual({ valid: false, code: "revoked" });
  });

  it("a load that started before a revocation in this isolate never stores its older verdict", async () => {
    const org = await makeOrg();
    // A cold load whose read returns just before a revocation commits here (and its handler calls forgetOrg).
    const racing = new Proxy(env.DB, {
      get: (db, prop) =>
        prop === "prepare"
          ? (sql: string) => {
              const statement = db.prepare(sql);
              return {
                bind: (...values: unknown[]) => ({
                  first: async () => {
                    const row = await statement.bind(...values).first();
                    await revokeElsewhere(org.org_id);
                    forgetOrg(org.org_id);
                    return row;
                  },
                }),
              };
            }
          : (Reflect.get(db, prop).bind?.(db) ?? Reflect.get(db, prop)),
    });
    const ctx = createExecutionContext();
    expect((await verifyKey({ ...env, DB: racing } as never, ctx, org.api_key)).valid).toBe(true); // it raced the change: answered…
    await waitOnExecutionContext(ctx);
    expect(await verify(org.api_key)).toEqual({ valid: false, code: "revoked" }); // …but never kept
  });
});

describe("partner reads through a D1 session", () => {
  it("read right after the partner's own write sees it; each read returns a bookmark; an unknown one falls back to the primary", async () => {
    const partner = await createPartner();
    const p = await (await provision(partner.partner_key, provisionBody())).json<any>();
    const res = await partnerGet(partner.partner_key, `${PARTNER_ORGS}/${p.organizationIdentifier}/`);
    expect(res.status).toBe(200);
    const bookmark = res.headers.get("x-d1-bookmark");
    expect(bookmark).toMatch(/^[0-9a-f-]+$/i);
    const withBookmark = await call(`${PARTNER_ORGS}/?limit=5`, { headers: { "x-kelviq-partner-key": partner.partner_key, "x-d1-bookmark": bookmark! } });
    expect(withBookmark.status).toBe(200);
    expect((await withBookmark.json<any>()).count).toBe(1);
    for (const junk of ["0000000000000000-00000000-00000000-deadbeef", "not a bookmark", "'; DROP TABLE x"]) {
      const r = await call(`${PARTNER_ORGS}/${p.organizationIdentifier}/`, { headers: { "x-kelviq-partner-key": partner.partner_key, "x-d1-bookmark": junk } });
      expect(r.status, junk).toBe(200);
    }
  });
});
