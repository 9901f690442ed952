import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { act, asOrg, call, countRows, dumpDatabase, liveKeys, makeOrg, PARTNER_ORGS, createPartner, provision, provisionBody, uniq } from "./helpers";

describe("org key auth", () => {
  const reasons: [string, () => Promise<Record<string, string>>, string][] = [
    ["missing", async () => ({}), "reason=missing"],
    ["malformed", async () => ({ "x-api-key": "ck_live_nope" }), "reason=malformed"],
    ["a partner key", async () => ({ "x-api-key": (await createPartner()).partner_key }), "reason=malformed"],
    ["a master key", async () => ({ "x-api-key": env.MASTER_ADMIN_KEY_ORG_CREATE }), "reason=malformed"],
    ["unknown", async () => ({ "x-api-key": `ck_live_${"Z".repeat(26)}` }), "reason=unknown"],
    ["revoked", async () => {
      const org = await makeOrg();
      await asOrg(org.api_key, "/v1/admin/key/revoke", "POST");
      return { "x-api-key": org.api_key };
    }, "reason=revoked"],
    ["org suspended", async () => {
      const org = await makeOrg();
      await act("suspend", org.org_id);
      return { "x-api-key": org.api_key };
    }, "reason=org_inactive"],
  ];
  for (const [label, headers, detail] of reasons) {
    it(`uniform 401 no sooner than 80 ms, reason in the audit log only: ${label}`, async () => {
      const h = await headers();
      for (const [method, path] of [["GET", "/v1/admin/audit-log"], ["POST", "/v1/admin/key/rotate"], ["POST", "/v1/admin/key/revoke"]]) {
        const started = Date.now();
        const res = await call(path, { method, headers: h });
        const elapsed = Date.now() - started;
        expect(res.status).toBe(401);
        const body = await res.json<any>();
        expect({ error: body.error, message: body.message }).toEqual({ error: "UNAUTHORIZED", message: "Missing or invalid credentials." });
        expect(elapsed).toBeGreaterThanOrEqual(79);
        const audit = await env.DB.prepare("SELECT * FROM audit_log WHERE request_id = ?").bind(body.request_id).first<any>();
        expect(audit).toMatchObject({ event_type: "AUTH_FAIL_ORG_KEY", detail });
      }
    });
  }

  it("server keys (sk_live_) authenticate too", async () => {
    const partner = await createPartner();
    const org = await (await provision(partner.partner_key, provisionBody())).json<any>();
    expect((await asOrg(org.serverKey, "/v1/admin/audit-log")).status).toBe(200);
  });
});

describe("POST /v1/admin/key/rotate", () => {
  it("returns a new key once; the old key fails on the next request; audited", async () => {
    const org = await makeOrg();
    const res = await asOrg(org.api_key, "/v1/admin/key/rotate", "POST");
    expect(res.status).toBe(200);
    const json = await res.json<any>();
    expect(json).toMatchObject({ rotated: true, org_id: org.org_id, key_type: "ck_live", warning: expect.stringContaining("ONCE") });
    expect(json.new_api_key).toMatch(/^ck_live_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect((await asOrg(org.api_key, "/v1/admin/audit-log")).status).toBe(401);
    expect((await asOrg(json.new_api_key, "/v1/admin/audit-log")).status).toBe(200);
    expect(await liveKeys(org.org_id)).toBe(1);
    const audit = await env.DB.prepare("SELECT * FROM audit_log WHERE org_id = ? AND event_type = 'KEY_ROTATED'").bind(org.org_id).first<any>();
    expect(audit).toMatchObject({ actor: `org:${org.org_id}`, key_prefix: `ck_live_${json.prefix}`, detail: `old_key=ck_live_${org.prefix}` });
    expect(await dumpDatabase()).not.toContain(json.new_api_key);
  });

  it("rotates a server key into a server key and leaves the client key alone", async () => {
    const partner = await createPartner();
    const org = await (await provision(partner.partner_key, provisionBody())).json<any>();
    const json = await (await asOrg(org.serverKey, "/v1/admin/key/rotate", "POST")).json<any>();
    expect(json.new_api_key).toMatch(/^sk_live_/);
    expect((await asOrg(org.clientKey, "/v1/admin/audit-log")).status).toBe(200);
  });

  it("concurrent rotations with one key leave exactly one live key", async () => {
    const org = await makeOrg();
    const responses = await Promise.all(Array.from({ length: 6 }, () => asOrg(org.api_key, "/v1/admin/key/rotate", "POST")));
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(1);
    expect(statuses.every((s) => s === 200 || s === 401)).toBe(true);
    expect(await liveKeys(org.org_id)).toBe(1);
    const winners = (await Promise.all(responses.filter((r) => r.status === 200).map((r) => r.json<any>()))).map((j) => j.new_api_key);
    expect(winners).toHaveLength(1);
  });
});

describe("POST /v1/admin/key/revoke", () => {
  it("revokes the key for good", async () => {
    const org = await makeOrg();
    const res = await asOrg(org.api_key, "/v1/admin/key/revoke", "POST");
    expect(res.status).toBe(200);
    expect(await res.json<any>()).toMatchObject({ revoked: true, org_id: org.org_id, prefix: org.prefix });
    expect(await liveKeys(org.org_id)).toBe(0);
    expect((await asOrg(org.api_key, "/v1/admin/key/revoke", "POST")).status).toBe(401);
    expect(await countRows("audit_log", "org_id = ? AND event_type = 'KEY_REVOKED'", org.org_id)).toBe(1);
  });
});

describe("GET /v1/admin/audit-log", () => {
  it("own org only, newest first, with event_type, since, until and limit", async () => {
    const org = await makeOrg();
    const other = await makeOrg();
    await act("suspend", org.org_id);
    await act("reactivate", org.org_id);
    const res = await asOrg(org.api_key, "/v1/admin/audit-log");
    expect(res.status).toBe(200);
    const json = await res.json<any>();
    expect(json.results.map((r: any) => r.event_type)).toEqual(["ADMIN_ORG_REACTIVATE", "ADMIN_ORG_SUSPEND", "ORG_CREATED"]);
    expect(json.count).toBe(3);
    expect(JSON.stringify(json)).not.toContain(other.org_id);
    expect(json.results[0]).not.toHaveProperty("ip");

    const only = await (await asOrg(org.api_key, "/v1/admin/audit-log?event_type=ORG_CREATED")).json<any>();
    expect(only.results.map((r: any) => r.event_type)).toEqual(["ORG_CREATED"]);
    const limited = await (await asOrg(org.api_key, "/v1/admin/audit-log?limit=1")).json<any>();
    expect(limited.results).toHaveLength(1);
    const created = json.results[2].created_at;
    const since = await (await asOrg(org.api_key, `/v1/admin/audit-log?since=${encodeURIComponent(created)}`)).json<any>();
    expect(since.results.length).toBe(3);
    const until = await (await asOrg(org.api_key, `/v1/admin/audit-log?until=${encodeURIComponent(created)}`)).json<any>();
    expect(until.results.length).toBe(0);
    const offset = await asOrg(org.api_key, `/v1/admin/audit-log?since=${encodeURIComponent("2000-01-01T01:00:00+01:00")}`);
    expect(offset.status).toBe(200);
  });

  it("422 on bad filters", async () => {
    const org = await makeOrg();
    for (const qs of ["event_type=NOPE", "since=yesterday", "until=2026-13-01T00:00:00Z", "limit=0", "limit=501", "limit=x", "since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z"]) {
      const res = await asOrg(org.api_key, `/v1/admin/audit-log?${qs}`);
      expect(res.status, qs).toBe(422);
      const json = await res.json<any>();
      expect(json.error).toBe("VALIDATION_FAILED");
      expect(json.details[0].location).toBe("query");
    }
  });
});
