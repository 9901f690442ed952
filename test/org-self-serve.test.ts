import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { act, asOrg, call, countRows, dumpDatabase, liveKeys, makeOrg, createPartner, provision, provisionBody } from "./helpers";

describe("org key auth", () => {
  const reasons: [string, () => Promise<Record<string, string>>, string][] = [
    ["missing", async () => ({}), "reason=missing"],
    ["malformed", async () => ({ "x-api-key": "ck_live_nope" }), "reason=malformed"],
    ["a partner key", async () => ({ "x-api-key": (await createPartner()).partner_key }), "reason=malformed"],
    ["a master key", async () => ({ "x-api-key": env.MASTER_ADMIN_KEY_ORG_CREATE }), "reason=malformed"],
    ["unknown", async () => ({ "x-api-key": `ck_live_${"Z".repeat(26)}` }), "reason=unknown"],
    [
      "revoked",
      async () => {
        const org = await makeOrg();
        await asOrg(org.server_api_key, "/v1/admin/key/revoke", "POST");
        return { "x-api-key": org.server_api_key };
      },
      "reason=revoked",
    ],
    [
      "org suspended",
      async () => {
        const org = await makeOrg();
        await act("suspend", org.org_id);
        return { "x-api-key": org.server_api_key };
      },
      "reason=org_inactive",
    ],
  ];
  for (const [label, headers, detail] of reasons) {
    it(`uniform 401 no sooner than 80 ms, reason in the audit log only: ${label}`, async () => {
      const h = await headers();
      for (const [method, path] of [
        ["GET", "/v1/admin/audit-log"],
        ["POST", "/v1/admin/key/rotate"],
        ["POST", "/v1/admin/key/revoke"],
      ]) {
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
  it("returns a new server key once; the old key fails on the next request; audited", async () => {
    const org = await makeOrg();
    const res = await asOrg(org.server_api_key, "/v1/admin/key/rotate", "POST");
    expect(res.status).toBe(200);
    const json = await res.json<any>();
    expect(json).toMatchObject({ rotated: true, org_id: org.org_id, key_type: "sk_live", warning: expect.stringContaining("ONCE") });
    expect(json.new_api_key).toMatch(/^sk_live_[0-9A-HJKMNP-TV-Z]{8}_[0-9A-HJKMNP-TV-Z]{31}$/);
    expect((await asOrg(org.server_api_key, "/v1/admin/audit-log")).status).toBe(401);
    expect((await asOrg(json.new_api_key, "/v1/admin/audit-log")).status).toBe(200);
    expect(await liveKeys(org.org_id)).toBe(2);
    const rotated = await env.DB.prepare("SELECT * FROM audit_log WHERE org_id = ? AND event_type = 'KEY_ROTATED'").bind(org.org_id).first<any>();
    expect(rotated).toMatchObject({ actor: `org:${org.org_id}`, key_prefix: `sk_live_${json.prefix}`, detail: `by=sk_live_${org.server_prefix}` });
    const revoked = await env.DB.prepare("SELECT * FROM audit_log WHERE org_id = ? AND event_type = 'KEY_REVOKED'").bind(org.org_id).first<any>();
    expect(revoked).toMatchObject({ key_prefix: `sk_live_${org.server_prefix}`, detail: "rotated" });
    expect(await dumpDatabase()).not.toContain(json.new_api_key);
  });

  it("rotates a partner org's server key into a server key and leaves the client key alone", async () => {
    const partner = await createPartner();
    const org = await (await provision(partner.partner_key, provisionBody())).json<any>();
    const json = await (await asOrg(org.serverKey, "/v1/admin/key/rotate", "POST")).json<any>();
    expect(json.new_api_key).toMatch(/^sk_live_/);
    expect(
      await countRows(
        "api_keys",
        "org_id = (SELECT org_id FROM organizations WHERE identifier = ?) AND key_type = 'ck_live' AND revoked_at IS NULL",
        org.organizationIdentifier,
      ),
    ).toBe(1);
  });

  it("concurrent rotations with one key leave exactly one live server key", async () => {
    const org = await makeOrg();
    const responses = await Promise.all(Array.from({ length: 6 }, () => asOrg(org.server_api_key, "/v1/admin/key/rotate", "POST")));
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(1);
    expect(statuses.every((s) => s === 200 || s === 401)).toBe(true);
    expect(await liveKeys(org.org_id)).toBe(2);
    const winners = (await Promise.all(responses.filter((r) => r.status === 200).map((r) => r.json<any>()))).map((j) => j.new_api_key);
    expect(winners).toHaveLength(1);
  });
});

describe("POST /v1/admin/key/revoke", () => {
  it("revokes the calling server key for good", async () => {
    const org = await makeOrg();
    const res = await asOrg(org.server_api_key, "/v1/admin/key/revoke", "POST");
    expect(res.status).toBe(200);
    expect(await res.json<any>()).toMatchObject({ revoked: true, org_id: org.org_id, key_type: "sk_live", prefix: org.server_prefix });
    expect(await liveKeys(org.org_id)).toBe(1);
    expect((await asOrg(org.server_api_key, "/v1/admin/key/revoke", "POST")).status).toBe(401);
    expect(await countRows("audit_log", "org_id = ? AND event_type = 'KEY_REVOKED'", org.org_id)).toBe(1);
  });
});

describe("GET /v1/admin/audit-log", () => {
  it("own org only, newest first, with event_type, since, until and limit", async () => {
    const org = await makeOrg();
    const other = await makeOrg();
    await act("suspend", org.org_id);
    await act("reactivate", org.org_id);
    const res = await asOrg(org.server_api_key, "/v1/admin/audit-log");
    expect(res.status).toBe(200);
    const json = await res.json<any>();
    expect(json.results.map((r: any) => r.event_type)).toEqual(["ADMIN_ORG_REACTIVATE", "ADMIN_ORG_SUSPEND", "ORG_CREATED"]);
    expect(json.count).toBe(3);
    expect(JSON.stringify(json)).not.toContain(other.org_id);
    expect(json.results[0]).not.toHaveProperty("ip");

    const only = await (await asOrg(org.server_api_key, "/v1/admin/audit-log?event_type=ORG_CREATED")).json<any>();
    expect(only.results.map((r: any) => r.event_type)).toEqual(["ORG_CREATED"]);
    const limited = await (await asOrg(org.server_api_key, "/v1/admin/audit-log?limit=1")).json<any>();
    expect(limited.results).toHaveLength(1);
    const created = json.results[2].created_at;
    const since = await (await asOrg(org.server_api_key, `/v1/admin/audit-log?since=${encodeURIComponent(created)}`)).json<any>();
    expect(since.results.length).toBe(3);
    const until = await (await asOrg(org.server_api_key, `/v1/admin/audit-log?until=${encodeURIComponent(created)}`)).json<any>();
    expect(until.results.length).toBe(0);
    const offset = await asOrg(org.server_api_key, `/v1/admin/audit-log?since=${encodeURIComponent("2000-01-01T01:00:00+01:00")}`);
    expect(offset.status).toBe(200);
  });

  it("422 on bad filters", async () => {
    const org = await makeOrg();
    for (const qs of [
      "event_type=NOPE",
      "since=yesterday",
      "until=2026-13-01T00:00:00Z",
      "limit=0",
      "limit=501",
      "limit=x",
      "since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z",
    ]) {
      const res = await asOrg(org.server_api_key, `/v1/admin/audit-log?${qs}`);
      expect(res.status, qs).toBe(422);
      const json = await res.json<any>();
      expect(json.error).toBe("VALIDATION_FAILED");
      expect(json.details[0].location).toBe("query");
    }
  });
});

// Contract §2 and §8: a client key (ck_live_) is publishable and administers nothing; the server key does.
describe("key roles: only the server key administers the org", () => {
  for (const [method, path] of [
    ["POST", "/v1/admin/key/rotate"],
    ["POST", "/v1/admin/key/revoke"],
    ["GET", "/v1/admin/audit-log"],
  ] as const) {
    it(`a valid client key on ${method} ${path} is 403 KEY_TYPE_NOT_ALLOWED and changes nothing`, async () => {
      const org = await makeOrg();
      const res = await asOrg(org.api_key, path, method);
      expect(res.status).toBe(403);
      const json = await res.json<any>();
      expect(json).toMatchObject({ error: "KEY_TYPE_NOT_ALLOWED", request_id: expect.stringMatching(/^req_/) });
      expect(await liveKeys(org.org_id)).toBe(2);
      expect(await countRows("audit_log", "org_id = ? AND event_type IN ('KEY_ROTATED', 'KEY_REVOKED')", org.org_id)).toBe(0);
      // The client key still works where it belongs: verification.
      expect(
        (await env.DB.prepare("SELECT revoked_at FROM api_keys WHERE org_id = ? AND key_type = 'ck_live'").bind(org.org_id).first<any>()).revoked_at,
      ).toBeNull();
    });
  }

  it("an invalid client key is still the uniform 401 (authentication comes first)", async () => {
    const res = await call("/v1/admin/key/rotate", { method: "POST", headers: { "x-api-key": `ck_live_${"Z".repeat(26)}` } });
    expect(res.status).toBe(401);
  });

  it("org create mints a server key too, returned once as server_api_key with server_prefix", async () => {
    const org = await makeOrg();
    expect(org.server_api_key).toMatch(/^sk_live_[0-9A-HJKMNP-TV-Z]{8}_[0-9A-HJKMNP-TV-Z]{31}$/);
    expect(org.server_prefix).toBe(org.server_api_key.slice(8, 16));
    expect(org.api_key).toMatch(/^ck_live_/);
    expect((await asOrg(org.server_api_key, "/v1/admin/audit-log")).status).toBe(200);
    expect(await dumpDatabase()).not.toContain(org.server_api_key);
  });

  it("the server key rotates the client key ({key_type: ck_live}); the server key stays", async () => {
    const org = await makeOrg();
    const res = await call("/v1/admin/key/rotate", { headers: { "x-api-key": org.server_api_key }, json: { key_type: "ck_live" } });
    expect(res.status).toBe(200);
    const json = await res.json<any>();
    expect(json).toMatchObject({ rotated: true, key_type: "ck_live", org_id: org.org_id });
    expect(json.new_api_key).toMatch(/^ck_live_/);
    const keys = await env.DB.prepare("SELECT key_type, prefix, revoked_at FROM api_keys WHERE org_id = ? ORDER BY id").bind(org.org_id).all<any>();
    expect(
      keys.results
        .filter((k: any) => !k.revoked_at)
        .map((k: any) => `${k.key_type}:${k.prefix}`)
        .sort(),
    ).toEqual([`ck_live:${json.prefix}`, `sk_live:${org.server_prefix}`].sort());
    expect((await asOrg(org.server_api_key, "/v1/admin/audit-log")).status).toBe(200);
  });

  it("the server key revokes the client key ({key_type: ck_live}); then has no client key to revoke (404)", async () => {
    const org = await makeOrg();
    const res = await call("/v1/admin/key/revoke", { headers: { "x-api-key": org.server_api_key }, json: { key_type: "ck_live" } });
    expect(res.status).toBe(200);
    expect(await res.json<any>()).toMatchObject({ revoked: true, key_type: "ck_live", prefix: org.prefix });
    expect(await countRows("api_keys", "org_id = ? AND key_type = 'ck_live' AND revoked_at IS NULL", org.org_id)).toBe(0);
    const again = await call("/v1/admin/key/revoke", { headers: { "x-api-key": org.server_api_key }, json: { key_type: "ck_live" } });
    expect(again.status).toBe(404);
    expect(await again.json<any>()).toMatchObject({
      error: "NOT_FOUND",
      message: "The organization has no live ck_live key.",
      request_id: expect.stringMatching(/^req_/),
    });
    // A new client key is one rotation away.
    const rotated = await call("/v1/admin/key/rotate", { headers: { "x-api-key": org.server_api_key }, json: { key_type: "ck_live" } });
    expect(rotated.status).toBe(200);
  });

  it("without a body, rotate and revoke act on the calling (server) key", async () => {
    const org = await makeOrg();
    const rotated = await (await asOrg(org.server_api_key, "/v1/admin/key/rotate", "POST")).json<any>();
    expect(rotated).toMatchObject({ key_type: "sk_live" });
    expect((await asOrg(org.server_api_key, "/v1/admin/audit-log")).status).toBe(401);
    const revoked = await asOrg(rotated.new_api_key, "/v1/admin/key/revoke", "POST");
    expect(await revoked.json<any>()).toMatchObject({ revoked: true, key_type: "sk_live", prefix: rotated.prefix });
    expect(await countRows("api_keys", "org_id = ? AND key_type = 'ck_live' AND revoked_at IS NULL", org.org_id)).toBe(1);
  });

  it("422 for an unknown key_type; 415 for a non-JSON body", async () => {
    const org = await makeOrg();
    const bad = await call("/v1/admin/key/rotate", { headers: { "x-api-key": org.server_api_key }, json: { key_type: "kvqp" } });
    expect(bad.status).toBe(422);
    expect((await bad.json<any>()).details[0]).toMatchObject({ location: "body", field: "key_type" });
    const text = await call("/v1/admin/key/revoke", {
      method: "POST",
      headers: { "x-api-key": org.server_api_key, "content-type": "text/plain" },
      body: "ck_live",
    });
    expect(text.status).toBe(415);
    expect((await text.json<any>()).error).toBe("UNSUPPORTED_MEDIA_TYPE");
    expect(await liveKeys(org.org_id)).toBe(2);
  });
});

describe("optional body of rotate and revoke", () => {
  it("an empty body with Content-Length: 0 is no body; an empty body declared JSON is 400 INVALID_JSON", async () => {
    const org = await makeOrg();
    const empty = await call("/v1/admin/key/rotate", { method: "POST", headers: { "x-api-key": org.server_api_key }, body: new Uint8Array(0) });
    expect(empty.status).toBe(200);
    const rotated = await empty.json<any>();
    expect(rotated.key_type).toBe("sk_live");
    const declared = await call("/v1/admin/key/revoke", {
      method: "POST",
      headers: { "x-api-key": rotated.new_api_key, "content-type": "application/json" },
      body: "",
    });
    expect(declared.status).toBe(400);
    expect((await declared.json<any>()).error).toBe("INVALID_JSON");
  });
});
