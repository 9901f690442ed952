// The audit log under hostile input and floods: no raw control characters stored, and failures aggregated so that
// a flood cannot turn into one D1 write per request.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, callWithEnv, countingDb, MASTER, uniq } from "./helpers";

const CONTROL = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

describe("audit detail never stores raw control characters", () => {
  it("an encoded path with %1b and %0a, audited by the IP limiter, is stored escaped", async () => {
    const ip = `203.0.113.${Math.floor(Math.random() * 200)}`;
    // The first refusal of the minute writes the row (later ones are counted into it): send the hostile path until then.
    let res: Response;
    let tries = 0;
    do res = await call("/v1/%1b[31mred%0aFAKE-LINE%e2%80%ae", { headers: { "cf-connecting-ip": ip } });
    while (res.status !== 429 && ++tries < 200);
    expect(res.status).toBe(429);
    const row = await env.DB.prepare("SELECT detail FROM audit_log WHERE event_type = 'AUTH_FAIL_RATE_LIMITED_IP' AND ip = ? AND detail LIKE '%red%'")
      .bind(ip)
      .first<{ detail: string }>();
    expect(row!.detail).not.toMatch(CONTROL);
    expect(row!.detail).toContain("\\x1b[31mred\\x0aFAKE-LINE\\u202e");
  });

  it("no row of the whole audit log holds a raw control character", async () => {
    const { results } = await env.DB.prepare("SELECT actor, key_prefix, ip, detail FROM audit_log").all();
    for (const r of results) for (const v of Object.values(r)) if (typeof v === "string") expect(v).not.toMatch(CONTROL);
  });
});

describe("auth-failure audit rows are aggregated per (event type, subject) per minute", () => {
  it("60 concurrent failures from one IP: one row with count 60, and a handful of D1 writes", async () => {
    const ip = `198.18.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}`;
    const { db, counter } = countingDb(env.DB);
    const responses = await Promise.all(
      Array.from({ length: 60 }, () => callWithEnv({ DB: db }, "/v1/admin/org/usage", { headers: { "x-api-key": "wrong", "cf-connecting-ip": ip } })),
    );
    expect(responses.every((r) => r.status === 401)).toBe(true);
    const rows = await env.DB.prepare("SELECT count, detail FROM audit_log WHERE event_type = 'AUTH_FAIL_MASTER_KEY' AND ip = ?")
      .bind(ip)
      .all<{ count: number; detail: string }>();
    expect(rows.results).toHaveLength(1);
    expect(rows.results[0]).toMatchObject({ count: 60, detail: "scope=ORG_USAGE_READ" });
    expect(counter.roundTrips).toBeLessThanOrEqual(3);
  });

  it("another IP or another minute is another row; the first failure's row is written before its 401", async () => {
    const key = uniq("k");
    const a = await call("/v1/admin/partners", { headers: { "x-api-key": key, "cf-connecting-ip": "198.19.0.1" } });
    const b = await call("/v1/admin/partners", { headers: { "x-api-key": key, "cf-connecting-ip": "198.19.0.2" } });
    for (const res of [a, b]) {
      const { request_id } = await res.json<any>();
      expect(await env.DB.prepare("SELECT count FROM audit_log WHERE request_id = ?").bind(request_id).first()).toEqual({ count: 1 });
    }
    void MASTER;
  });
});
