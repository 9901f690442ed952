// Key format 2: the type prefix, the 8-character prefix, "_", 24 random characters and a CRC32 checksum. No other
// vendor's published pattern matches it, a failed checksum is refused with no HMAC and no D1 read on every path,
// and format-1 keys keep working until rotated.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { crc32, KEY_PATTERN_V2, mintKey, parseKey } from "../src/lib/keys/keys";
import { verifyKey } from "../src/verify/verify-key";
import { hmacHex } from "./crypto";
import { call, callWithEnv, countingDb, createPartner, makeOrg, PARTNER_ORGS } from "./helpers";

/** Stripe's registered pattern (GitHub secret scanning), which format-1 server keys matched. */
const STRIPE = /(sk|rk)_live_[0-9a-z]{10,128}/i;

/** The key with one character of its random part changed: the checksum no longer holds. */
const corrupt = (key: string) => {
  const i = key.length - 10;
  return key.slice(0, i) + (key[i] === "A" ? "B" : "A") + key.slice(i + 1);
};

describe("key format 2", () => {
  it("every type: the registered pattern matches, Stripe's does not, the prefix keeps its meaning", () => {
    for (const type of ["ck_live", "sk_live", "kvqp"] as const) {
      for (let i = 0; i < 200; i++) {
        const key = mintKey(type);
        expect(key.plaintext).toMatch(new RegExp(`^${KEY_PATTERN_V2.source}$`));
        expect(key.plaintext).not.toMatch(STRIPE);
        expect(parseKey(key.plaintext)).toEqual({ type, prefix: key.prefix, format: 2 });
        expect(key.plaintext.slice(type.length + 1, type.length + 9)).toBe(key.prefix);
      }
    }
    expect(crc32("123456789")).toBe(0xcbf43926); // the CRC-32 check value
  });

  it("a changed character, a swapped checksum or a truncated key fails the checksum: not a key", () => {
    const key = mintKey("sk_live").plaintext;
    expect(parseKey(corrupt(key))).toBeNull();
    expect(parseKey(key.slice(0, -7) + mintKey("sk_live").plaintext.slice(-7))).toBeNull();
    expect(parseKey(key.slice(0, -1))).toBeNull();
  });

  it("a failed checksum costs no D1 round trip and answers as any bad key: verifyKey, org-key auth, partner auth", async () => {
    const org = await makeOrg();
    const counted = countingDb(env.DB);
    const ctx = createExecutionContext();
    expect(await verifyKey({ ...env, DB: counted.db } as never, ctx, corrupt(mintKey("ck_live").plaintext))).toEqual({ valid: false, code: "malformed" });
    await waitOnExecutionContext(ctx);
    expect(counted.counter.roundTrips).toBe(0); // no HMAC, no lookup
    const org401 = await callWithEnv({ DB: counted.db }, "/v1/admin/keys", { headers: { "x-api-key": corrupt(mintKey("sk_live").plaintext) } });
    const partner401 = await callWithEnv({ DB: counted.db }, `${PARTNER_ORGS}/`, { headers: { "x-kelviq-partner-key": corrupt(mintKey("kvqp").plaintext) } });
    expect([org401.status, partner401.status]).toEqual([401, 401]);
    const body = await org401.json<any>();
    expect(body).toMatchObject({ error: "UNAUTHORIZED", message: "Missing or invalid credentials." });
    // No lookup read a key: the only D1 writes are each failure's aggregated audit row (contract: every auth failure
    // is audited).
    expect(counted.counter.roundTrips).toBeLessThanOrEqual(2);
    expect(org.server_api_key).toMatch(new RegExp(`^${KEY_PATTERN_V2.source}$`));
  });

  it("format-1 keys keep working until rotated; the rotation issues format 2", async () => {
    const org = await makeOrg();
    const old = `sk_live_${"7".repeat(8)}${Array.from({ length: 18 }, (_, i) => "ABCDEFGHJK"[i % 10]).join("")}`;
    expect(parseKey(old)).toMatchObject({ type: "sk_live", prefix: "77777777", format: 1 });
    await env.DB.prepare("INSERT INTO api_keys (key_hash, pepper_id, key_type, prefix, org_id, created_at) VALUES (?, 'p', 'sk_live', '77777777', ?, ?)")
      .bind(await hmacHex(env.API_KEY_PEPPER, old), org.org_id, new Date().toISOString())
      .run();
    expect((await call("/v1/admin/keys", { headers: { "x-api-key": old } })).status).toBe(200);
    const rotated = await (await call("/v1/admin/key/rotate", { method: "POST", headers: { "x-api-key": old } })).json<any>();
    expect(rotated.new_api_key).toMatch(new RegExp(`^sk_live_${rotated.prefix}_`));
    expect(parseKey(rotated.new_api_key)?.format).toBe(2);
    expect((await call("/v1/admin/keys", { headers: { "x-api-key": old } })).status).toBe(401);
    const partner = await createPartner();
    expect(parseKey(partner.partner_key)).toMatchObject({ type: "kvqp", format: 2 });
  });
});
