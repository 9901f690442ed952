import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, createPartner, PARTNER_ORGS } from "./helpers";

describe("per-IP rate limit (60 / 60 s, before auth, every route)", () => {
  it("the 61st request from one IP is 429 RATE_LIMITED with Retry-After, audited", async () => {
    const ip = "203.0.113.61";
    // The limiter counts in fixed 60 s windows: if one starts mid-test, the first 429 comes later, never sooner.
    let allowed = 0;
    while ((await call("/", { headers: { "cf-connecting-ip": ip } })).status === 200 && allowed < 200) allowed++;
    expect(allowed).toBeGreaterThanOrEqual(60);
    expect(allowed).toBeLessThan(120);
    const res = await call("/v1/admin/org/create", { method: "POST", headers: { "cf-connecting-ip": ip } });
    expect(res.status).toBe(429);
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    const json = await res.json<any>();
    expect(json.error).toBe("RATE_LIMITED");
    // Both refusals of this minute are one aggregated row (the first one's request id and path, and a count).
    const rows = () => env.DB.prepare("SELECT * FROM audit_log WHERE event_type = 'AUTH_FAIL_RATE_LIMITED_IP' AND ip = ?").bind(ip).all<any>();
    let audit = await rows();
    for (let i = 0; i < 40 && audit.results[0]?.count !== 2; i++) audit = (await new Promise((r) => setTimeout(r, 100)), await rows());
    expect(audit.results).toHaveLength(1);
    expect(audit.results[0]).toMatchObject({ ip, count: 2 });
    expect(json.request_id).toMatch(/^req_/);
    expect((await call("/", { headers: { "cf-connecting-ip": "203.0.113.62" } })).status).toBe(200);
  });
});

describe("requests without CF-Connecting-IP (service bindings) skip the IP limit", () => {
  it("150 binding requests in a minute all pass the IP limiter; each is still authenticated", async () => {
    const statuses = new Set<number>();
    for (let i = 0; i < 150; i++) statuses.add((await call("/", { viaBinding: true })).status);
    expect([...statuses]).toEqual([200]);
    const unauthenticated = await call("/v1/admin/org/usage", { viaBinding: true });
    expect(unauthenticated.status).toBe(401);
    expect(
      await env.DB.prepare("SELECT COUNT(*) AS n FROM audit_log WHERE event_type = 'AUTH_FAIL_RATE_LIMITED_IP' AND (ip IS NULL OR ip = 'unknown')").first<{
        n: number;
      }>(),
    ).toEqual({ n: 0 });
  });
});

describe("per-key rate limit (1000 / 60 s, after auth)", () => {
  it("a partner key's 1001st request is 429, audited with the key prefix", async () => {
    const partner = await createPartner();
    const headers = { "x-kelviq-partner-key": partner.partner_key };
    let allowed = 0;
    let res: Response;
    for (;;) {
      res = await call(`${PARTNER_ORGS}/?limit=1`, { headers });
      if (res.status !== 200 || allowed >= 2100) break;
      allowed++;
    }
    // Fixed 60 s windows: at least 1000 pass before the first 429, and fewer than 2000 (two windows).
    expect(allowed).toBeGreaterThanOrEqual(1000);
    expect(allowed).toBeLessThan(2000);
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("60");
    const json = await res.json<any>();
    const audit = await env.DB.prepare("SELECT * FROM audit_log WHERE request_id = ?").bind(json.request_id).first<any>();
    expect(audit).toMatchObject({ event_type: "AUTH_FAIL_RATE_LIMITED_KEY", key_prefix: `kvqp_${partner.prefix}`, actor: `partner:${partner.partner_id}` });
  }, 60_000);
});
