import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import {
  call,
  callWithEnv,
  countingDb,
  countRows,
  createPartner,
  dumpDatabase,
  MASTER,
  PARTNER_ORGS,
  partnerGet,
  PLAINTEXT_KEY_PATTERN,
  provision,
  provisionBody,
  uniq,
} from "./helpers";

let partner: Awaited<ReturnType<typeof createPartner>>;
let other: Awaited<ReturnType<typeof createPartner>>;
beforeAll(async () => {
  partner = await createPartner("Partner A");
  other = await createPartner("Partner B");
});

const KEYS = [
  "userId",
  "organizationIdentifier",
  "organizationSlug",
  "clientKey",
  "serverKey",
  "partnerExternalId",
  "clientKeyPrefix",
  "serverKeyPrefix",
  "clientKeyLastUsedAt",
  "serverKeyLastUsedAt",
];

describe("partner key", () => {
  const cases: [string, () => Record<string, string>, string][] = [
    ["missing", () => ({}), "reason=missing"],
    ["malformed", () => ({ "x-kelviq-partner-key": "kvqp_short" }), "reason=malformed"],
    ["unknown", () => ({ "x-kelviq-partner-key": `kvqp_${"A".repeat(26)}` }), "reason=unknown"],
    ["an org key", () => ({ "x-kelviq-partner-key": `ck_live_${"A".repeat(26)}` }), "reason=malformed"],
    ["a master key", () => ({ "x-kelviq-partner-key": MASTER.PARTNER_ADMIN }), "reason=malformed"],
    ["a master key in X-API-Key", () => ({ "x-api-key": MASTER.PARTNER_ADMIN }), "reason=missing"],
    ["a Bearer header", () => ({ authorization: `Bearer ${partner.partner_key}` }), "reason=missing"],
  ];
  for (const [label, headers, detail] of cases) {
    it(`401 uniform, audited: ${label}`, async () => {
      for (const [method, path, json] of [
        ["POST", PARTNER_ORGS, provisionBody()],
        ["GET", `${PARTNER_ORGS}/`, undefined],
        ["GET", `${PARTNER_ORGS}/${crypto.randomUUID()}/`, undefined],
        ["GET", `${PARTNER_ORGS}/by-external-id/x/`, undefined],
        ["POST", `${PARTNER_ORGS}/${crypto.randomUUID()}/rotate-keys/`, undefined],
      ] as const) {
        const res = await call(path, { method, headers: headers(), json });
        expect(res.status).toBe(401);
        const body = await res.json<any>();
        expect({ error: body.error, message: body.message }).toEqual({ error: "UNAUTHORIZED", message: "Missing or invalid credentials." });
        const audit = await env.DB.prepare("SELECT * FROM audit_log WHERE request_id = ?").bind(body.request_id).first<any>();
        expect(audit).toMatchObject({ event_type: "AUTH_FAIL_PARTNER_KEY", detail });
        expect(audit.key_prefix ?? "").not.toMatch(/[0-9A-Z]{9,}/);
      }
    });
  }
});

describe("POST /api/v1/partner/organizations", () => {
  it("201 PartnerOrganization with both keys, and every row of the batch", async () => {
    const body = provisionBody({ email: "  Owner.One@Acme.Example.com ", businessName: "Provision Test Co" });
    const res = await provision(partner.partner_key, body);
    expect(res.status).toBe(201);
    const org = await res.json<any>();
    expect(Object.keys(org).sort()).toEqual([...KEYS].sort());
    expect(org.userId).toEqual(expect.any(Number));
    expect(org.organizationIdentifier).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(org.organizationSlug).toBe("provision-test-co");
    expect(org.clientKey).toMatch(/^ck_live_[0-9A-HJKMNP-TV-Z]{8}_[0-9A-HJKMNP-TV-Z]{31}$/);
    expect(org.serverKey).toMatch(/^sk_live_[0-9A-HJKMNP-TV-Z]{8}_[0-9A-HJKMNP-TV-Z]{31}$/);
    expect(org.clientKeyPrefix).toBe(org.clientKey.slice(8, 16));
    expect(org.serverKeyPrefix).toBe(org.serverKey.slice(8, 16));
    expect(org.partnerExternalId).toBe(body.externalId);
    expect(res.headers.get("x-request-id")).toMatch(/^req_/);

    const row = await env.DB.prepare("SELECT * FROM organizations WHERE identifier = ?").bind(org.organizationIdentifier).first<any>();
    expect(row).toMatchObject({
      name: "Provision Test Co",
      domain: "general",
      tier: "starter",
      allowed_origins: "[]",
      partner_id: partner.partner_id,
      external_id: body.externalId,
      owner_user_id: org.userId,
      active: 1,
    });
    expect(row.org_id).toMatch(/^org_[a-z0-9_]{3,60}$/);
    const user = await env.DB.prepare("SELECT * FROM users WHERE id = ?").bind(org.userId).first<any>();
    expect(user).toMatchObject({ email: "Owner.One@Acme.Example.com", password_hash: null });
    const keys = await env.DB.prepare("SELECT key_type, prefix, revoked_at FROM api_keys WHERE org_id = ? ORDER BY key_type").bind(row.org_id).all<any>();
    expect(keys.results).toEqual([
      { key_type: "ck_live", prefix: org.clientKeyPrefix, revoked_at: null },
      { key_type: "sk_live", prefix: org.serverKeyPrefix, revoked_at: null },
    ]);
    const audit = await env.DB.prepare("SELECT event_type, actor FROM audit_log WHERE org_id = ? ORDER BY id").bind(row.org_id).all<any>();
    expect(audit.results).toEqual([
      { event_type: "ORG_PROVISIONED", actor: `partner:${partner.partner_id}` },
      { event_type: "USER_CREATED", actor: `partner:${partner.partner_id}` },
    ]);
    const outbox = await env.DB.prepare("SELECT * FROM outbox WHERE json_extract(payload, '$.org_id') = ?").bind(row.org_id).first<any>();
    expect(outbox).toMatchObject({ kind: "welcome_email", status: "pending", attempts: 0 });
    expect(JSON.parse(outbox.payload)).toEqual({ user_id: org.userId, org_id: row.org_id });
    const dump = await dumpDatabase();
    expect(dump).not.toContain(org.clientKey);
    expect(dump).not.toContain(org.serverKey);
  });

  it("accepts the path with and without a trailing slash", async () => {
    const a = await call(`${PARTNER_ORGS}/`, { headers: { "x-kelviq-partner-key": partner.partner_key }, json: provisionBody() });
    const b = await call(PARTNER_ORGS, { headers: { "x-kelviq-partner-key": partner.partner_key }, json: provisionBody() });
    expect([a.status, b.status]).toEqual([201, 201]);
  });

  it("slugs: from businessName, de-duplicated; else from the email domain, or the local part for webmail", async () => {
    const name = `Slug Co ${uniq()}`;
    const base = name.toLowerCase().replace(/[^a-z0-9]+/g, "-");
    const slugs = [];
    for (let i = 0; i < 3; i++) slugs.push((await (await provision(partner.partner_key, provisionBody({ businessName: name }))).json<any>()).organizationSlug);
    expect(slugs).toEqual([base, `${base}-2`, `${base}-3`]);

    const cases: [Record<string, unknown>, string | RegExp][] = [
      [{ businessName: "Café Zürich & Söhne" }, /^cafe-zurich-sohne(-\d+)?$/],
      [{ businessName: undefined, email: `x${uniq()}@widgets.example.org` }, /^widgets-example(-\d+)?$/],
      [{ businessName: "", email: `jane.doe.${uniq()}@gmail.com` }, /^jane-doe-[a-z0-9-]+$/],
      [{ businessName: "🚀🚀", email: `y${uniq()}@rocket.example` }, /^rocket(-\d+)?$/],
      [{ businessName: "  ", email: `z${uniq()}@ex.io` }, /^ex(-\d+)?$/],
    ];
    for (const [overrides, expected] of cases) {
      const res = await provision(partner.partner_key, provisionBody(overrides));
      expect(res.status).toBe(201);
      expect((await res.json<any>()).organizationSlug).toMatch(expected);
    }
  });

  const invalid: [string, Record<string, unknown>, string][] = [
    ["externalId missing", { externalId: undefined }, "externalId"],
    ["externalId empty", { externalId: "" }, "externalId"],
    ["externalId 129 characters", { externalId: "e".repeat(129) }, "externalId"],
    ["externalId a number", { externalId: 12 }, "externalId"],
    ["email missing", { email: undefined }, "email"],
    ["email invalid", { email: "not-an-email" }, "email"],
    ["email too long", { email: `${"a".repeat(250)}@x.io` }, "email"],
    ["businessName 201 characters", { businessName: "b".repeat(201) }, "businessName"],
    ["businessName not a string", { businessName: ["x"] }, "businessName"],
  ];
  for (const [label, overrides, field] of invalid) {
    it(`400 VALIDATION_FAILED with details: ${label}`, async () => {
      const before = await countRows("organizations");
      const res = await provision(partner.partner_key, provisionBody(overrides));
      expect(res.status).toBe(400);
      const json = await res.json<any>();
      expect(json.error).toBe("VALIDATION_FAILED");
      expect(json.details.map((d: any) => d.field)).toContain(field);
      expect(await countRows("organizations")).toBe(before);
    });
  }

  it("400 INVALID_JSON, 415 for non-JSON, 413 for a huge body", async () => {
    const h = { "x-kelviq-partner-key": partner.partner_key };
    expect((await call(PARTNER_ORGS, { method: "POST", headers: { ...h, "content-type": "application/json" }, body: "{" })).status).toBe(400);
    expect((await call(PARTNER_ORGS, { method: "POST", headers: { ...h, "content-type": "text/plain" }, body: "{}" })).status).toBe(415);
    expect((await call(PARTNER_ORGS, { headers: h, json: provisionBody({ pad: "x".repeat(70_000) }) })).status).toBe(413);
  });

  it("400 EXTERNAL_ID_TAKEN for this partner's externalId; another partner may use it", async () => {
    const body = provisionBody();
    expect((await provision(partner.partner_key, body)).status).toBe(201);
    const again = await provision(partner.partner_key, { ...body, email: `again.${body.email}` });
    expect(again.status).toBe(400);
    expect((await again.json<any>()).error).toBe("EXTERNAL_ID_TAKEN");
    const sameEmailToo = await provision(partner.partner_key, body);
    expect((await sameEmailToo.json<any>()).error).toBe("EXTERNAL_ID_TAKEN");
    expect((await provision(other.partner_key, { ...body, email: `other.${body.email}` })).status).toBe(201);
  });

  it("409 EMAIL_TAKEN for any user's email, compared trimmed and case-insensitively, nothing written", async () => {
    const body = provisionBody();
    expect((await provision(partner.partner_key, body)).status).toBe(201);
    const before = await dumpDatabase();
    for (const email of [body.email, ` ${body.email.toUpperCase()} `]) {
      const res = await provision(other.partner_key, provisionBody({ email }));
      expect(res.status).toBe(409);
      expect((await res.json<any>()).error).toBe("EMAIL_TAKEN");
    }
    const after = await dumpDatabase();
    // No org, user, key or outbox row was added: only each 409's audit row and the partner's hourly count of them.
    const unaudited = (dump: string) => dump.replace(/(audit_log|partner_counters):.*\n?/g, "");
    expect(unaudited(after)).toBe(unaudited(before));
  });

  it("12 concurrent provisions with one businessName: 12 × 201 and 12 distinct slugs", async () => {
    const name = `Race Co ${uniq()}`;
    const responses = await Promise.all(Array.from({ length: 12 }, () => provision(partner.partner_key, provisionBody({ businessName: name }))));
    expect(responses.map((r) => r.status)).toEqual(Array(12).fill(201));
    const slugs = await Promise.all(responses.map(async (r) => (await r.json<any>()).organizationSlug));
    expect(new Set(slugs).size).toBe(12);
    const base = name.toLowerCase().replace(/[^a-z0-9]+/g, "-");
    expect(new Set(slugs)).toEqual(new Set([base, ...Array.from({ length: 11 }, (_, i) => `${base}-${i + 2}`)]));
  });

  it("10 concurrent provisions with one externalId: one 201 and nine 400", async () => {
    const externalId = uniq("race");
    const responses = await Promise.all(
      Array.from({ length: 10 }, (_, i) => provision(partner.partner_key, provisionBody({ externalId, email: `r${i}.${externalId}@example.com` }))),
    );
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 400)).toHaveLength(9);
    for (const r of responses.filter((r) => r.status === 400)) expect((await r.json<any>()).error).toBe("EXTERNAL_ID_TAKEN");
    expect(await countRows("organizations", "partner_id = ? AND external_id = ?", partner.partner_id, externalId)).toBe(1);
    expect(await countRows("users", "email LIKE ?", `%.${externalId}@example.com`)).toBe(1);
  });
});

describe("Idempotency-Key on provisioning", () => {
  it("a replay returns the same org with keys null; another body is 422; another partner's same key is not a replay", async () => {
    const idem = uniq();
    const body = provisionBody();
    const first = await (await provision(partner.partner_key, body, { "idempotency-key": idem })).json<any>();
    const res = await provision(partner.partner_key, body, { "idempotency-key": idem });
    expect(res.status).toBe(201);
    expect(res.headers.get("idempotent-replayed")).toBe("true");
    expect(await res.json<any>()).toEqual({ ...first, clientKey: null, serverKey: null });

    const reused = await provision(partner.partner_key, provisionBody(), { "idempotency-key": idem });
    expect(reused.status).toBe(422);
    expect((await reused.json<any>()).error).toBe("IDEMPOTENCY_KEY_REUSED");

    const theirs = await provision(other.partner_key, provisionBody(), { "idempotency-key": idem });
    expect(theirs.status).toBe(201);
    expect(theirs.headers.get("idempotent-replayed")).toBeNull();
    expect((await theirs.json<any>()).clientKey).toMatch(/^ck_live_/);
  });

  it("concurrent duplicates: exactly one mints", async () => {
    const idem = uniq();
    const body = provisionBody();
    const responses = await Promise.all(Array.from({ length: 8 }, () => provision(partner.partner_key, body, { "idempotency-key": idem })));
    expect(responses.map((r) => r.status)).toEqual(Array(8).fill(201));
    const bodies = await Promise.all(responses.map((r) => r.json<any>()));
    expect(bodies.filter((b) => b.clientKey).length).toBe(1);
    expect(new Set(bodies.map((b) => b.organizationIdentifier)).size).toBe(1);
  });

  it("400 for an empty or over-long Idempotency-Key", async () => {
    for (const idem of ["", "k".repeat(257)]) {
      const res = await provision(partner.partner_key, provisionBody(), { "idempotency-key": idem });
      expect(res.status).toBe(400);
      expect((await res.json<any>()).details[0].location).toBe("header");
    }
  });
});

describe("reads", () => {
  let mine: any;
  let theirs: any;
  beforeAll(async () => {
    mine = await (await provision(partner.partner_key, provisionBody({ externalId: `mine/${uniq()} x` }))).json<any>();
    theirs = await (await provision(other.partner_key, provisionBody())).json<any>();
  });

  it("GET /{identifier}/: 200 with keys null and prefixes, with or without the slash", async () => {
    for (const path of [
      `${PARTNER_ORGS}/${mine.organizationIdentifier}/`,
      `${PARTNER_ORGS}/${mine.organizationIdentifier}`,
      `${PARTNER_ORGS}/${mine.organizationIdentifier.toUpperCase()}/`,
    ]) {
      const res = await partnerGet(partner.partner_key, path);
      expect(res.status).toBe(200);
      expect(await res.json<any>()).toEqual({ ...mine, clientKey: null, serverKey: null });
    }
  });

  it("GET /{identifier}/: 404 for unknown or another partner's org, 400 for a malformed id", async () => {
    for (const id of [crypto.randomUUID(), theirs.organizationIdentifier]) {
      const res = await partnerGet(partner.partner_key, `${PARTNER_ORGS}/${id}/`);
      expect(res.status).toBe(404);
      expect((await res.json<any>()).error).toBe("NOT_FOUND");
    }
    const bad = await partnerGet(partner.partner_key, `${PARTNER_ORGS}/not-a-uuid/`);
    expect(bad.status).toBe(400);
    expect((await bad.json<any>()).details[0]).toMatchObject({ location: "path", field: "identifier" });
  });

  it("GET /by-external-id/{externalId}/: 200; 404 for unknown or another partner's", async () => {
    const res = await partnerGet(partner.partner_key, `${PARTNER_ORGS}/by-external-id/${encodeURIComponent(mine.partnerExternalId)}/`);
    expect(res.status).toBe(200);
    expect((await res.json<any>()).organizationIdentifier).toBe(mine.organizationIdentifier);
    for (const ext of ["nope", theirs.partnerExternalId]) {
      expect((await partnerGet(partner.partner_key, `${PARTNER_ORGS}/by-external-id/${encodeURIComponent(ext)}/`)).status).toBe(404);
    }
  });

  it("GET /?external_id=: only this partner's org, count 0 or 1", async () => {
    const res = await partnerGet(partner.partner_key, `${PARTNER_ORGS}/?external_id=${encodeURIComponent(mine.partnerExternalId)}`);
    expect(await res.json<any>()).toEqual({ results: [{ ...mine, clientKey: null, serverKey: null }], count: 1, next: null });
    const theirsRes = await partnerGet(partner.partner_key, `${PARTNER_ORGS}/?external_id=${encodeURIComponent(theirs.partnerExternalId)}`);
    expect(await theirsRes.json<any>()).toEqual({ results: [], count: 0, next: null });
  });

  it("400 for a bad limit or cursor", async () => {
    for (const qs of ["limit=0", "limit=101", "limit=abc", "limit=1.5", "cursor=%%%", "cursor=bm9wZQ"]) {
      const res = await partnerGet(partner.partner_key, `${PARTNER_ORGS}/?${qs}`);
      expect(res.status).toBe(400);
      expect((await res.json<any>()).error).toBe("VALIDATION_FAILED");
    }
  });
});

describe("list paging", () => {
  it("pages over a few hundred orgs newest first: no duplicates, none missing, stable while new orgs arrive", async () => {
    const p = await createPartner("Pager");
    const created: string[] = [];
    for (let batch = 0; batch < 6; batch++) {
      const res = await Promise.all(Array.from({ length: 50 }, () => provision(p.partner_key, provisionBody())));
      for (const r of res) created.push((await r.json<any>()).organizationIdentifier);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    const arrivals: string[] = [];
    do {
      const res = await partnerGet(p.partner_key, `${PARTNER_ORGS}/?limit=37${cursor ? `&cursor=${cursor}` : ""}`);
      expect(res.status).toBe(200);
      const page = await res.json<any>();
      expect(page.count).toBe(300 + arrivals.length);
      expect(page.results.length).toBeLessThanOrEqual(37);
      seen.push(...page.results.map((o: any) => o.organizationIdentifier));
      expect(JSON.stringify(page)).not.toMatch(PLAINTEXT_KEY_PATTERN);
      cursor = page.next;
      pages++;
      // A new org arrives between pages: it belongs before page one, so it must not show up later.
      arrivals.push((await (await provision(p.partner_key, provisionBody())).json<any>()).organizationIdentifier);
    } while (cursor);
    expect(pages).toBe(Math.ceil(300 / 37));
    expect(new Set(seen).size).toBe(seen.length);
    const bySeq = await env.DB.prepare("SELECT identifier FROM organizations WHERE partner_id = ? ORDER BY seq DESC")
      .bind(p.partner_id)
      .all<{ identifier: string }>();
    expect(seen).toEqual(bySeq.results.map((r) => r.identifier).filter((id) => !arrivals.includes(id)));
    expect(new Set(seen)).toEqual(new Set(created));
    expect(seen.some((id) => arrivals.includes(id))).toBe(false);

    const first = await (await partnerGet(p.partner_key, `${PARTNER_ORGS}/?limit=1`)).json<any>();
    expect(first.results[0].organizationIdentifier).toBe(arrivals.at(-1));
    const all = await (await partnerGet(p.partner_key, `${PARTNER_ORGS}/`)).json<any>();
    expect(all.results).toHaveLength(100);
    expect(all.next).not.toBeNull();
  });
});

describe("POST /{identifier}/rotate-keys/", () => {
  it("new client and server keys once; the old ones revoked; audited; replay has keys null", async () => {
    const org = await (await provision(partner.partner_key, provisionBody())).json<any>();
    const idem = uniq();
    const res = await call(`${PARTNER_ORGS}/${org.organizationIdentifier}/rotate-keys/`, {
      method: "POST",
      headers: { "x-kelviq-partner-key": partner.partner_key, "idempotency-key": idem },
    });
    expect(res.status).toBe(200);
    const rotated = await res.json<any>();
    expect(rotated.clientKey).toMatch(/^ck_live_/);
    expect(rotated.serverKey).toMatch(/^sk_live_/);
    expect(rotated.clientKey).not.toBe(org.clientKey);
    expect(rotated.organizationIdentifier).toBe(org.organizationIdentifier);
    const live = await env.DB.prepare(
      "SELECT k.key_type, k.prefix FROM api_keys k JOIN organizations o ON o.org_id = k.org_id WHERE o.identifier = ? AND k.revoked_at IS NULL ORDER BY k.key_type",
    )
      .bind(org.organizationIdentifier)
      .all<any>();
    expect(live.results).toEqual([
      { key_type: "ck_live", prefix: rotated.clientKeyPrefix },
      { key_type: "sk_live", prefix: rotated.serverKeyPrefix },
    ]);
    expect(await countRows("audit_log", "event_type = 'KEY_ROTATED' AND key_prefix = ?", `ck_live_${rotated.clientKeyPrefix}`)).toBe(1);

    const replay = await call(`${PARTNER_ORGS}/${org.organizationIdentifier}/rotate-keys`, {
      method: "POST",
      headers: { "x-kelviq-partner-key": partner.partner_key, "idempotency-key": idem },
    });
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(await replay.json<any>()).toEqual({ ...rotated, clientKey: null, serverKey: null });
    const read = await (await partnerGet(partner.partner_key, `${PARTNER_ORGS}/${org.organizationIdentifier}/`)).json<any>();
    expect(read.clientKeyPrefix).toBe(rotated.clientKeyPrefix);
    const dump = await dumpDatabase();
    for (const k of [org.clientKey, org.serverKey, rotated.clientKey, rotated.serverKey]) expect(dump).not.toContain(k);
  });

  it("404 for another partner's org, writing nothing", async () => {
    const org = await (await provision(other.partner_key, provisionBody())).json<any>();
    const before = await countRows("api_keys");
    const res = await call(`${PARTNER_ORGS}/${org.organizationIdentifier}/rotate-keys/`, {
      method: "POST",
      headers: { "x-kelviq-partner-key": partner.partner_key },
    });
    expect(res.status).toBe(404);
    expect(await countRows("api_keys")).toBe(before);
  });
});

describe("D1 round trips", () => {
  it("provision: one batch; read: one query once the partner key is cached; list page: one batch", async () => {
    const warm = countingDb(env.DB);
    const h = { "x-kelviq-partner-key": partner.partner_key };
    await callWithEnv({ DB: warm.db }, `${PARTNER_ORGS}/`, { headers: h }); // caches the partner in this module
    const p = countingDb(env.DB);
    const res = await callWithEnv({ DB: p.db }, PARTNER_ORGS, { headers: h, json: provisionBody() });
    expect(res.status).toBe(201);
    expect(p.counter.roundTrips).toBe(1);
    const org = await res.json<any>();

    const r = countingDb(env.DB);
    expect((await callWithEnv({ DB: r.db }, `${PARTNER_ORGS}/${org.organizationIdentifier}/`, { headers: h })).status).toBe(200);
    expect(r.counter.roundTrips).toBe(1);

    const l = countingDb(env.DB);
    expect((await callWithEnv({ DB: l.db }, `${PARTNER_ORGS}/?limit=10`, { headers: h })).status).toBe(200);
    expect(l.counter.roundTrips).toBe(1);
  });
});

describe("no plaintext key anywhere in D1", () => {
  it("after provisions, replays, rotations and failures", async () => {
    const dump = await dumpDatabase();
    expect(dump).not.toMatch(PLAINTEXT_KEY_PATTERN);
    expect(dump).not.toContain(partner.partner_key);
    expect(dump).not.toContain(env.API_KEY_PEPPER);
  });
});
