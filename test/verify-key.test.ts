import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { DEFAULT_REFRESH_MS, REFRESH_GRACE_MS, verifyKey } from "../src/verify/verify-key";
import { flushUsage } from "../src/lib/data/usage-records";
import { act, call, countingDb, createPartner, makeOrg, provision, provisionBody, SCOPE_KEYS } from "./helpers";
import { hmacHex } from "./crypto";

const rpc = exports.KeyVerifier;

/** verifyKey with chosen bindings, its waitUntil work drained. */
async function verifyWith(bindings: Partial<Env> & Record<string, unknown>, key: unknown, options?: { origin?: string }) {
  const ctx = createExecutionContext();
  const result = await verifyKey({ ...env, ...bindings } as never, ctx, key, options);
  await waitOnExecutionContext(ctx);
  return result;
}

describe("KeyVerifier.verifyKey over RPC", () => {
  it("valid client and server keys", async () => {
    const org = await makeOrg({ tier: "standard", allowed_origins: "https://app.example.com" });
    expect(await rpc.verifyKey(org.api_key)).toEqual({ valid: true, org_id: org.org_id, tier: "standard", key_type: "ck_live", prefix: org.prefix });
    const partner = await createPartner();
    const p = await (await provision(partner.partner_key, provisionBody())).json<any>();
    expect(await rpc.verifyKey(p.serverKey)).toMatchObject({ valid: true, key_type: "sk_live", prefix: p.serverKeyPrefix });
  });

  it("codes: malformed, unknown, revoked, org inactive", async () => {
    for (const k of ["", "ck_live_short", "kvqp_" + "A".repeat(26), 42 as unknown as string]) {
      expect(await rpc.verifyKey(k)).toEqual({ valid: false, code: "malformed" });
    }
    expect(await rpc.verifyKey(`ck_live_${"Q".repeat(26)}`)).toEqual({ valid: false, code: "unknown" });
    const revoked = await makeOrg();
    await call("/v1/admin/key/revoke", { headers: { "x-api-key": revoked.server_api_key }, json: { key_type: "ck_live" } });
    expect(await rpc.verifyKey(revoked.api_key)).toEqual({ valid: false, code: "revoked" });
    const suspended = await makeOrg();
    await act("suspend", suspended.org_id);
    expect(await rpc.verifyKey(suspended.api_key)).toEqual({ valid: false, code: "org_inactive" });
  });

  it("origins: a client key only from an allowed origin; a server key never from a browser", async () => {
    const org = await makeOrg({ allowed_origins: ["https://app.example.com", "http://localhost:3000"] });
    expect((await rpc.verifyKey(org.api_key, { origin: "https://app.example.com" })).valid).toBe(true);
    expect((await rpc.verifyKey(org.api_key, { origin: "http://localhost:3000" })).valid).toBe(true);
    expect(await rpc.verifyKey(org.api_key, { origin: "https://evil.example.com" })).toEqual({ valid: false, code: "origin_not_allowed" });
    const partner = await createPartner();
    const p = await (await provision(partner.partner_key, provisionBody())).json<any>();
    expect(await rpc.verifyKey(p.serverKey, { origin: "https://app.example.com" })).toEqual({ valid: false, code: "origin_not_allowed" });
    expect(await rpc.verifyKey(p.clientKey, { origin: "https://app.example.com" })).toEqual({ valid: false, code: "origin_not_allowed" }); // no origins yet
  });

  it("quota exceeded once the period's count reaches the tier limit", async () => {
    const org = await makeOrg({ tier: "starter" });
    await env.DB.prepare("INSERT INTO usage_daily (org_id, day, count) VALUES (?, ?, 10000)").bind(org.org_id, new Date().toISOString().slice(0, 10)).run();
    expect(await rpc.verifyKey(org.api_key)).toEqual({ valid: false, code: "quota_exceeded" });
  });

  it("rate limited past 1000 verifications of one key per minute", { timeout: 60_000 }, async () => {
    const org = await makeOrg({ tier: "enterprise" });
    let allowed = 0;
    let last: Awaited<ReturnType<typeof verifyWith>>;
    while ((last = await verifyWith({}, org.api_key)).valid && allowed < 2100) allowed++;
    // Fixed 60 s windows: at least 1000 pass before the first refusal, and fewer than two windows' worth.
    expect(allowed).toBeGreaterThanOrEqual(1000);
    expect(allowed).toBeLessThan(2000);
    expect(last).toEqual({ valid: false, code: "rate_limited" });
  });

  it("counts each successful verification once in usage_daily, through the queue", async () => {
    const org = await makeOrg();
    for (let i = 0; i < 5; i++) expect((await rpc.verifyKey(org.api_key)).valid).toBe(true);
    expect(await rpc.verifyKey(org.api_key, { origin: "https://evil.example.com" })).toMatchObject({ valid: false });
    let count = 0;
    for (let i = 0; i < 100 && count < 5; i++) {
      await new Promise((r) => setTimeout(r, 100));
      count = (await env.DB.prepare("SELECT COALESCE(SUM(count), 0) AS n FROM usage_daily WHERE org_id = ?").bind(org.org_id).first<{ n: number }>())!.n;
    }
    expect(count).toBe(5);
    const usage = await (await call(`/v1/admin/org/${org.org_id}/usage`, { headers: { "x-api-key": SCOPE_KEYS.ORG_USAGE_READ } })).json<any>();
    expect(usage.interaction_count_current_period).toBe(5);
  });
});

describe("hot path and cache", () => {
  it("cold verification is one D1 round trip; warm is none; malformed is none", async () => {
    const org = await makeOrg();
    const cold = countingDb(env.DB);
    expect((await verifyWith({ DB: cold.db }, org.api_key)).valid).toBe(true);
    expect(cold.counter.roundTrips).toBe(1);
    const warm = countingDb(env.DB);
    expect((await verifyWith({ DB: warm.db }, org.api_key)).valid).toBe(true);
    expect(warm.counter.roundTrips).toBe(0);
    const bad = countingDb(env.DB);
    expect((await verifyWith({ DB: bad.db }, "ck_live_garbage")).valid).toBe(false);
    expect(bad.counter.roundTrips).toBe(0);
  });

  it(`a change made elsewhere takes effect within the refresh bound (${(DEFAULT_REFRESH_MS + REFRESH_GRACE_MS) / 1000} s); at once in this isolate`, async () => {
    const org = await makeOrg();
    expect((await verifyWith({}, org.api_key)).valid).toBe(true);
    // Revoked behind this isolate's back (as another isolate would): still cached…
    await env.DB.prepare("UPDATE api_keys SET revoked_at = ? WHERE org_id = ?").bind(new Date().toISOString(), org.org_id).run();
    expect((await verifyWith({}, org.api_key)).valid).toBe(true);
    // …until the bound passes.
    const now = Date.now();
    const spy = vi.spyOn(Date, "now").mockReturnValue(now + DEFAULT_REFRESH_MS + REFRESH_GRACE_MS);
    try {
      expect(await verifyWith({}, org.api_key)).toEqual({ valid: false, code: "revoked" });
    } finally {
      spy.mockRestore();
    }
  });

  it("counts are flushed to the queue in one batch per isolate window, not one send per verification", async () => {
    const org = await makeOrg();
    const sent: unknown[] = [];
    const queue = { sendBatch: async (msgs: { body: unknown }[]) => void sent.push(...msgs.map((m) => m.body)), send: async () => {} } as unknown as Queue;
    const ctx = createExecutionContext();
    for (let i = 0; i < 20; i++) await verifyKey({ ...env, USAGE_QUEUE: queue } as never, ctx, org.api_key);
    await waitOnExecutionContext(ctx);
    await flushUsage(queue);
    // One count for the 20, and one "key used this minute" for the key: 20 verifications, 2 messages.
    expect(sent).toEqual([
      { org_id: org.org_id, day: new Date().toISOString().slice(0, 10), count: 20 },
      { kind: "key_used", key_id: expect.any(Number), at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:00\.000Z$/) },
    ]);
  });
});

describe("pepper rotation", () => {
  it("a key hashed with the previous pepper verifies and is re-hashed to the current one", async () => {
    const org = await makeOrg();
    const next = "next-pepper-fedcba9876543210";
    const bindings = { API_KEY_PEPPER: next, API_KEY_PEPPER_PREVIOUS: env.API_KEY_PEPPER };
    expect(await verifyWith(bindings, org.api_key)).toMatchObject({ valid: true, org_id: org.org_id });
    const row = await env.DB.prepare("SELECT key_hash, pepper_id FROM api_keys WHERE org_id = ?").bind(org.org_id).first<any>();
    expect(row.key_hash).toBe(await hmacHex(next, org.api_key));
    expect(row.pepper_id).toBe((await hmacHex(next, "pepper-id")).slice(0, 12));
    // Without the previous pepper, a key still on the old hash is unknown.
    const old = await makeOrg();
    expect(await verifyWith({ API_KEY_PEPPER: next }, old.api_key)).toEqual({ valid: false, code: "unknown" });
  });
});

describe("no lockout by forged keys (docs/contract.md)", () => {
  it("a flood of forged keys carrying a victim's public prefix leaves the victim valid", { timeout: 120_000 }, async () => {
    const victim = await makeOrg({ tier: "enterprise" });
    expect((await rpc.verifyKey(victim.api_key)).valid).toBe(true);
    // The limit is 1000 per key per minute: 1,100 forgeries would exhaust a bucket named by the prefix.
    const forged = () =>
      `ck_live_${victim.prefix}${"0123456789ABCDEFGH"
        .split("")
        .sort(() => Math.random() - 0.5)
        .join("")}`;
    for (let i = 0; i < 1100; i++) expect((await verifyWith({}, forged())).valid).toBe(false);
    expect(await rpc.verifyKey(victim.api_key)).toMatchObject({ valid: true, org_id: victim.org_id });
  });

  it("the per-key bucket is named by the org and key type (a rotation chain shares it), never by its public prefix", async () => {
    const org = await makeOrg();
    const subjects: string[] = [];
    const limiter = { limit: async ({ key }: { key: string }) => (subjects.push(key), { success: true }) };
    expect((await verifyWith({ KEY_RATE_LIMITER: limiter }, org.api_key)).valid).toBe(true);
    expect((await verifyWith({ KEY_RATE_LIMITER: limiter }, `ck_live_${org.prefix}${"Z".repeat(18)}`)).valid).toBe(false);
    expect(subjects).toEqual([`org:${org.org_id}:ck_live`]);
  });
});

describe("quota: exact within one isolate", () => {
  const today = () => new Date().toISOString().slice(0, 10);
  /** A queue that never delivers: D1's count stays behind, as it does while the pipeline lags. */
  const stalled = { sendBatch: async () => {}, send: async () => {} } as unknown as Queue;

  it("concurrent cold verifications never go past the tier limit", async () => {
    const org = await makeOrg({ tier: "starter" });
    await env.DB.prepare("INSERT INTO usage_daily (org_id, day, count) VALUES (?, ?, 9990)").bind(org.org_id, today()).run();
    const results = await Promise.all(Array.from({ length: 40 }, () => verifyWith({ USAGE_QUEUE: stalled }, org.api_key)));
    expect(results.filter((r) => r.valid)).toHaveLength(10);
    expect(results.filter((r) => !r.valid).every((r) => !r.valid && r.code === "quota_exceeded")).toBe(true);
  });

  it("the client and the server key share the org's quota", async () => {
    const org = await makeOrg({ tier: "starter" });
    await env.DB.prepare("INSERT INTO usage_daily (org_id, day, count) VALUES (?, ?, 9995)").bind(org.org_id, today()).run();
    let valid = 0;
    for (let i = 0; i < 6; i++) {
      if ((await verifyWith({ USAGE_QUEUE: stalled }, org.api_key)).valid) valid++;
      if ((await verifyWith({ USAGE_QUEUE: stalled }, org.server_api_key)).valid) valid++;
    }
    expect(valid).toBe(5);
  });

  it("a cache refresh from a lagging D1 count does not hand out the same quota again", async () => {
    const org = await makeOrg({ tier: "starter" });
    await env.DB.prepare("INSERT INTO usage_daily (org_id, day, count) VALUES (?, ?, 9990)").bind(org.org_id, today()).run();
    let valid = 0;
    for (let i = 0; i < 6; i++) if ((await verifyWith({ USAGE_QUEUE: stalled }, org.api_key)).valid) valid++;
    const spy = vi.spyOn(Date, "now").mockReturnValue(Date.now() + DEFAULT_REFRESH_MS + REFRESH_GRACE_MS);
    try {
      for (let i = 0; i < 20; i++) if ((await verifyWith({ USAGE_QUEUE: stalled }, org.api_key)).valid) valid++;
    } finally {
      spy.mockRestore();
    }
    expect(valid).toBe(10);
  });
});
