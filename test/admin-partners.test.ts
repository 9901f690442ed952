import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, countRows, createPartner, dumpDatabase, MASTER, PARTNER_ORGS, partnerGet, provision, provisionBody, uniq } from "./helpers";

const admin = (path: string, init: { method?: string; json?: unknown; idem?: string | null; key?: string } = {}) => {
  const headers: Record<string, string> = { "x-api-key": init.key ?? MASTER.PARTNER_ADMIN };
  if (init.idem !== null) headers["idempotency-key"] = init.idem ?? uniq("k");
  return call(path, { method: init.method ?? "POST", headers, json: init.json });
};

describe("POST /v1/admin/partners", () => {
  it("201 with the partner key once; stored only as a hash", async () => {
    const res = await admin("/v1/admin/partners", { json: { name: "  Reseller Inc " } });
    expect(res.status).toBe(201);
    const json = await res.json<any>();
    expect(json).toMatchObject({ name: "Reseller Inc", warning: expect.stringContaining("ONCE") });
    expect(json.partner_id).toMatch(/^ptn_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(json.partner_key).toMatch(/^kvqp_[0-9A-HJKMNP-TV-Z]{8}_[0-9A-HJKMNP-TV-Z]{31}$/);
    expect(json.prefix).toBe(json.partner_key.slice(5, 13));
    expect(json.request_id).toMatch(/^req_/);
    const dump = await dumpDatabase();
    expect(dump).not.toContain(json.partner_key);
    expect(await countRows("api_keys", "partner_id = ? AND key_type = 'kvqp'", json.partner_id)).toBe(1);
    expect(await countRows("audit_log", "event_type = 'PARTNER_CREATED' AND key_prefix = ?", `kvqp_${json.prefix}`)).toBe(1);
  });

  it("replays without the key; 422 for the same key with another name", async () => {
    const idem = uniq();
    const first = await (await admin("/v1/admin/partners", { json: { name: "A" }, idem })).json<any>();
    const res = await admin("/v1/admin/partners", { json: { name: "A" }, idem });
    expect(res.status).toBe(201);
    expect(res.headers.get("idempotent-replayed")).toBe("true");
    const replay = await res.json<any>();
    expect(replay).toMatchObject({ partner_id: first.partner_id, prefix: first.prefix });
    expect(replay.partner_key).toBeUndefined();
    const other = await admin("/v1/admin/partners", { json: { name: "B" }, idem });
    expect(other.status).toBe(422);
    expect((await other.json<any>()).error).toBe("IDEMPOTENCY_KEY_REUSED");
  });

  it("401 for another scope's master key; 400 without Idempotency-Key; 422 for a bad name", async () => {
    expect((await admin("/v1/admin/partners", { json: { name: "A" }, key: MASTER.ORG_CREATE })).status).toBe(401);
    const noIdem = await admin("/v1/admin/partners", { json: { name: "A" }, idem: null });
    expect(noIdem.status).toBe(400);
    expect((await noIdem.json<any>()).error).toBe("VALIDATION_FAILED");
    for (const body of [{}, { name: "" }, { name: "x".repeat(201) }, { name: 5 }]) {
      const res = await admin("/v1/admin/partners", { json: body });
      expect(res.status).toBe(422);
      expect((await res.json<any>()).details[0].field).toBe("name");
    }
  });
});

describe("GET /v1/admin/partners", () => {
  it("lists partners with prefixes and org counts, and no key", async () => {
    const p = await createPartner("Listed Partner");
    await provision(p.partner_key, provisionBody());
    const res = await call("/v1/admin/partners", { headers: { "x-api-key": MASTER.PARTNER_ADMIN } });
    expect(res.status).toBe(200);
    const json = await res.json<any>();
    const mine = json.results.find((r: any) => r.partner_id === p.partner_id);
    expect(mine).toMatchObject({ name: "Listed Partner", active: true, prefix: p.prefix, org_count: 1 });
    expect(json.count).toBe(json.results.length);
    expect(JSON.stringify(json)).not.toMatch(/kvqp_[0-9A-Z]{8}_?[0-9A-Z]{18}/);
    expect((await call("/v1/admin/partners", { headers: { "x-api-key": MASTER.ORG_CREATE } })).status).toBe(401);
  });
});

describe("POST /v1/admin/partners/{partner_id}/rotate-key", () => {
  it("returns a new key once; the old key stops working at once", async () => {
    const p = await createPartner();
    expect((await partnerGet(p.partner_key, `${PARTNER_ORGS}/`)).status).toBe(200); // cached in this isolate
    const idem = uniq();
    const res = await admin(`/v1/admin/partners/${p.partner_id}/rotate-key`, { idem });
    expect(res.status).toBe(200);
    const json = await res.json<any>();
    expect(json).toMatchObject({ rotated: true, partner_id: p.partner_id });
    expect(json.partner_key).toMatch(/^kvqp_/);
    expect(json.partner_key).not.toBe(p.partner_key);
    expect((await partnerGet(p.partner_key, `${PARTNER_ORGS}/`)).status).toBe(401);
    expect((await partnerGet(json.partner_key, `${PARTNER_ORGS}/`)).status).toBe(200);
    expect(await countRows("api_keys", "partner_id = ? AND revoked_at IS NULL", p.partner_id)).toBe(1);

    const replay = await admin(`/v1/admin/partners/${p.partner_id}/rotate-key`, { idem });
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    const replayed = await replay.json<any>();
    expect(replayed.partner_key).toBeUndefined();
    expect(replayed.prefix).toBe(json.prefix);
    expect(await countRows("api_keys", "partner_id = ?", p.partner_id)).toBe(2);
    expect(await dumpDatabase()).not.toContain(json.partner_key);
  });

  it("404 for an unknown partner (recorded as the key's result, nothing else written), 422 for a malformed id", async () => {
    const idem = uniq();
    const res = await admin(`/v1/admin/partners/ptn_${"0".repeat(26)}/rotate-key`, { idem });
    expect(res.status).toBe(404);
    expect((await res.json<any>()).error).toBe("NOT_FOUND");
    expect(await countRows("idempotency_keys", "idempotency_key = ? AND status_code = 404", idem)).toBe(1);
    expect(await countRows("api_keys", "partner_id = ?", `ptn_${"0".repeat(26)}`)).toBe(0);
    const bad = await admin(`/v1/admin/partners/not-a-partner/rotate-key`);
    expect(bad.status).toBe(422);
    expect((await bad.json<any>()).details[0]).toMatchObject({ location: "path", field: "partner_id" });
  });
});

describe("POST /v1/admin/partners/{partner_id}/deactivate", () => {
  it("the key stops working, the orgs stay; a repeat is a no-op; rotate is then refused", async () => {
    const p = await createPartner();
    const org = await (await provision(p.partner_key, provisionBody())).json<any>();
    const res = await admin(`/v1/admin/partners/${p.partner_id}/deactivate`);
    expect(res.status).toBe(200);
    const json = await res.json<any>();
    expect(json).toMatchObject({ deactivated: true, partner_id: p.partner_id });
    expect((await partnerGet(p.partner_key, `${PARTNER_ORGS}/`)).status).toBe(401);
    expect(await countRows("organizations", "identifier = ?", org.organizationIdentifier)).toBe(1);
    const audit = await env.DB.prepare("SELECT detail FROM audit_log WHERE event_type = 'AUTH_FAIL_PARTNER_KEY' ORDER BY id DESC LIMIT 1").first<any>();
    expect(audit.detail).toBe("reason=partner_inactive");

    const again = await admin(`/v1/admin/partners/${p.partner_id}/deactivate`);
    expect(again.status).toBe(200);
    expect((await again.json<any>()).deactivated_at).toBe(json.deactivated_at);
    expect(await countRows("audit_log", "event_type = 'PARTNER_DEACTIVATED' AND detail = ?", `partner_id=${p.partner_id}`)).toBe(1);

    const rotate = await admin(`/v1/admin/partners/${p.partner_id}/rotate-key`);
    expect(rotate.status).toBe(409);
    expect((await rotate.json<any>()).error).toBe("PARTNER_INACTIVE");
    expect(await countRows("api_keys", "partner_id = ?", p.partner_id)).toBe(1);
  });

  it("404 for an unknown partner", async () => {
    expect((await admin(`/v1/admin/partners/ptn_${"1".repeat(26)}/deactivate`)).status).toBe(404);
  });
});
