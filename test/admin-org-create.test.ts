import { env } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { call, callWithEnv, countingDb, countRows, createOrg, dumpDatabase, MASTER, orgBody, PLAINTEXT_KEY_PATTERN, uniq } from "./helpers";
import { hmacHex } from "./crypto";

const PATH = "/v1/admin/org/create";

describe("POST /v1/admin/org/create: success", () => {
  it("creates the org and returns its key once, with request id and timestamp", async () => {
    const body = orgBody();
    const res = await createOrg(body);
    expect(res.status).toBe(201);
    const json = await res.json<any>();
    expect(json).toMatchObject({ org_id: body.org_id, warning: expect.stringContaining("ONCE") });
    expect(json.api_key).toMatch(/^ck_live_[0-9A-HJKMNP-TV-Z]{8}_[0-9A-HJKMNP-TV-Z]{31}$/);
    expect(json.prefix).toBe(json.api_key.slice(8, 16));
    expect(json.request_id).toMatch(/^req_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(res.headers.get("x-request-id")).toBe(json.request_id);
    expect(json.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(json.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(res.headers.get("idempotent-replayed")).toBeNull();

    const org = await env.DB.prepare("SELECT * FROM organizations WHERE org_id = ?").bind(body.org_id).first<any>();
    expect(org).toMatchObject({
      name: "Acme Corp",
      domain: "general",
      tier: "starter",
      slug: body.org_id,
      status: "active",
      active: 1,
      allowed_origins: '["https://acme.example.com"]',
    });
    expect(org.identifier).toMatch(/^[0-9a-f-]{36}$/);

    // A client key (api_key, as in the seed) and a server key, both stored as peppered hashes only.
    expect(json.server_api_key).toMatch(/^sk_live_[0-9A-HJKMNP-TV-Z]{8}_[0-9A-HJKMNP-TV-Z]{31}$/);
    expect(json.server_prefix).toBe(json.server_api_key.slice(8, 16));
    const keys = await env.DB.prepare("SELECT * FROM api_keys WHERE org_id = ? ORDER BY key_type").bind(body.org_id).all<any>();
    expect(keys.results).toHaveLength(2);
    expect(keys.results[0]).toMatchObject({ key_type: "ck_live", prefix: json.prefix, revoked_at: null });
    expect(keys.results[0].key_hash).toBe(await hmacHex(env.API_KEY_PEPPER, json.api_key));
    expect(keys.results[1]).toMatchObject({ key_type: "sk_live", prefix: json.server_prefix, revoked_at: null });
    expect(keys.results[1].key_hash).toBe(await hmacHex(env.API_KEY_PEPPER, json.server_api_key));

    const audit = await env.DB.prepare("SELECT * FROM audit_log WHERE org_id = ?").bind(body.org_id).all<any>();
    expect(audit.results).toHaveLength(1);
    expect(audit.results[0]).toMatchObject({
      event_type: "ORG_CREATED",
      actor: "master:ORG_CREATE",
      key_prefix: `ck_live_${json.prefix}`,
      request_id: json.request_id,
    });
  });

  it("accepts origins as one string, separated by commas or spaces, or an array, and stores a list", async () => {
    const cases: [unknown, string[]][] = [
      ["https://a.example.com, https://b.example.com", ["https://a.example.com", "https://b.example.com"]],
      ["https://a.example.com https://b.example.com:8443", ["https://a.example.com", "https://b.example.com:8443"]],
      [
        ["https://a.example.com", "http://localhost:3000"],
        ["https://a.example.com", "http://localhost:3000"],
      ],
      ["http://localhost", ["http://localhost"]],
      ["https://a.example.com,https://a.example.com", ["https://a.example.com"]],
    ];
    for (const [input, stored] of cases) {
      const body = orgBody({ allowed_origins: input });
      expect((await createOrg(body)).status).toBe(201);
      const row = await env.DB.prepare("SELECT allowed_origins FROM organizations WHERE org_id = ?").bind(body.org_id).first<{ allowed_origins: string }>();
      expect(JSON.parse(row!.allowed_origins)).toEqual(stored);
    }
  });

  it("trims the name and accepts 200 characters; every domain and tier", async () => {
    const body = orgBody({ name: `  ${"n".repeat(200)}  `, domain: "pharmaceutical", tier: "enterprise" });
    expect((await createOrg(body)).status).toBe(201);
    const row = await env.DB.prepare("SELECT name FROM organizations WHERE org_id = ?").bind(body.org_id).first<any>();
    expect(row.name).toBe("n".repeat(200));
    for (const domain of ["healthcare", "aviation", "financial", "legal"]) {
      for (const tier of ["starter", "standard"]) {
        expect((await createOrg(orgBody({ domain, tier }))).status).toBe(201);
      }
    }
  });
});

describe("POST /v1/admin/org/create: master key", () => {
  const attempts: [string, Record<string, string>][] = [
    ["missing", {}],
    ["wrong", { "x-api-key": "not-the-key" }],
    ["empty", { "x-api-key": "" }],
    ["another scope's key", { "x-api-key": MASTER.PARTNER_ADMIN }],
    ["another scope's key (billing)", { "x-api-key": MASTER.BILLING_SUSPEND }],
    ["the key as a Bearer token", { authorization: `Bearer ${MASTER.ORG_CREATE}` }],
  ];
  let uniformBody: string | undefined;

  for (const [label, headers] of attempts) {
    it(`401 with one uniform body and an audit row: ${label}`, async () => {
      const body = orgBody();
      const res = await call(PATH, { headers: { ...headers, "idempotency-key": uniq() }, json: body });
      expect(res.status).toBe(401);
      const json = await res.json<any>();
      expect(json.request_id).toMatch(/^req_/);
      const { request_id, timestamp, ...rest } = json;
      uniformBody ??= JSON.stringify(rest);
      expect(JSON.stringify(rest)).toBe(uniformBody);
      expect(rest).toEqual({ error: "UNAUTHORIZED", message: "Missing or invalid credentials." });

      const audit = await env.DB.prepare("SELECT * FROM audit_log WHERE request_id = ?").bind(request_id).first<any>();
      expect(audit).toMatchObject({ event_type: "AUTH_FAIL_MASTER_KEY", actor: "anonymous" });
      expect(audit.detail).toContain("scope=ORG_CREATE");
      expect(JSON.stringify(audit)).not.toContain(MASTER.ORG_CREATE);
      expect(JSON.stringify(audit)).not.toContain(MASTER.PARTNER_ADMIN);
      expect(await countRows("organizations", "org_id = ?", body.org_id)).toBe(0);
    });
  }

  it("401 when the scope's secret is unset (fail closed), even for an empty key", async () => {
    for (const key of ["", MASTER.ORG_CREATE]) {
      const res = await callWithEnv({ MASTER_ADMIN_KEY_ORG_CREATE: undefined }, PATH, {
        headers: { "x-api-key": key, "idempotency-key": uniq() },
        json: orgBody(),
      });
      expect(res.status).toBe(401);
      expect((await res.json<any>()).error).toBe("UNAUTHORIZED");
    }
  });
});

describe("POST /v1/admin/org/create: Idempotency-Key header", () => {
  const cases: [string, Record<string, string>][] = [
    ["missing", {}],
    ["empty", { "idempotency-key": "" }],
    ["257 characters", { "idempotency-key": "k".repeat(257) }],
  ];
  for (const [label, headers] of cases) {
    it(`400 VALIDATION_FAILED when ${label}, nothing written`, async () => {
      const body = orgBody();
      const res = await call(PATH, { headers: { "x-api-key": MASTER.ORG_CREATE, ...headers }, json: body });
      expect(res.status).toBe(400);
      const json = await res.json<any>();
      expect(json.error).toBe("VALIDATION_FAILED");
      expect(json.details).toEqual([expect.objectContaining({ location: "header", field: "Idempotency-Key" })]);
      expect(await countRows("organizations", "org_id = ?", body.org_id)).toBe(0);
    });
  }

  it("accepts 1 and 256 characters", async () => {
    expect((await createOrg(orgBody(), uniq().slice(0, 1) + "")).status).toBe(201);
    expect((await createOrg(orgBody(), uniq().padEnd(256, "x"))).status).toBe(201);
  });
});

describe("POST /v1/admin/org/create: body", () => {
  const invalid: [string, Record<string, unknown>, string[]][] = [
    ["org_id without the org_ prefix", { org_id: "acme_corp" }, ["org_id"]],
    ["org_id too short", { org_id: "org_ab" }, ["org_id"]],
    ["org_id too long", { org_id: `org_${"a".repeat(61)}` }, ["org_id"]],
    ["org_id with capitals", { org_id: "org_Acme" }, ["org_id"]],
    ["org_id with a hyphen", { org_id: "org_acme-corp" }, ["org_id"]],
    ["org_id a number", { org_id: 42 }, ["org_id"]],
    ["name empty", { name: "" }, ["name"]],
    ["name only spaces", { name: "   " }, ["name"]],
    ["name 201 characters", { name: "n".repeat(201) }, ["name"]],
    ["name with a NUL", { name: "Acme\u0000Corp" }, ["name"]],
    ["domain not in the enum", { domain: "retail" }, ["domain"]],
    ["tier not in the enum", { tier: "platinum" }, ["tier"]],
    ["allowed_origins missing", { allowed_origins: undefined }, ["allowed_origins"]],
    ["allowed_origins empty", { allowed_origins: "" }, ["allowed_origins"]],
    ["allowed_origins an empty array", { allowed_origins: [] }, ["allowed_origins"]],
    ["allowed_origins with a path", { allowed_origins: "https://acme.example.com/app" }, ["allowed_origins"]],
    ["allowed_origins with a trailing slash", { allowed_origins: "https://acme.example.com/" }, ["allowed_origins"]],
    ["allowed_origins plain http", { allowed_origins: "http://acme.example.com" }, ["allowed_origins"]],
    ["allowed_origins not a URL", { allowed_origins: "acme.example.com" }, ["allowed_origins"]],
    ["allowed_origins a wildcard", { allowed_origins: "*" }, ["allowed_origins"]],
    ["allowed_origins upper-case", { allowed_origins: "https://ACME.example.com" }, ["allowed_origins"]],
    ["allowed_origins a number", { allowed_origins: 7 }, ["allowed_origins"]],
    ["one bad origin among good ones", { allowed_origins: ["https://a.example.com", "ftp://b.example.com"] }, ["allowed_origins"]],
    ["several fields at once", { org_id: "x", name: "", domain: "x", tier: "x" }, ["org_id", "name", "domain", "tier"]],
  ];
  for (const [label, overrides, fields] of invalid) {
    it(`422 VALIDATION_FAILED naming each field: ${label}`, async () => {
      const body = orgBody(overrides);
      const orgsBefore = await countRows("organizations");
      const key = uniq();
      const res = await createOrg(body, key);
      expect(res.status).toBe(422);
      const json = await res.json<any>();
      expect(json.error).toBe("VALIDATION_FAILED");
      expect(new Set(json.details.map((d: any) => d.field))).toEqual(new Set(fields));
      expect(json.details.every((d: any) => d.location === "body" && d.message)).toBe(true);
      expect(await countRows("idempotency_keys", "idempotency_key = ?", key)).toBe(0);
      expect(await countRows("organizations")).toBe(orgsBefore);
    });
  }

  it("422 for a JSON body that is not an object", async () => {
    for (const json of [[], "a string", 42, null]) {
      const res = await createOrg(json);
      expect(res.status).toBe(422);
      expect((await res.json<any>()).error).toBe("VALIDATION_FAILED");
    }
  });

  it("400 INVALID_JSON for a body that is not JSON", async () => {
    for (const body of ["{", "not json", "", '{"org_id": "org_abc",}']) {
      const res = await call(PATH, {
        method: "POST",
        headers: { "x-api-key": MASTER.ORG_CREATE, "idempotency-key": uniq(), "content-type": "application/json" },
        body,
      });
      expect(res.status).toBe(400);
      const json = await res.json<any>();
      expect(json.error).toBe("INVALID_JSON");
      expect(json.request_id).toMatch(/^req_/);
    }
  });

  it("415 for a body that is not application/json", async () => {
    for (const contentType of ["text/plain", "application/x-www-form-urlencoded", undefined]) {
      const headers: Record<string, string> = { "x-api-key": MASTER.ORG_CREATE, "idempotency-key": uniq() };
      if (contentType) headers["content-type"] = contentType;
      const res = await call(PATH, { method: "POST", headers, body: JSON.stringify(orgBody()) });
      expect(res.status).toBe(415);
      expect((await res.json<any>()).error).toBe("UNSUPPORTED_MEDIA_TYPE");
    }
  });

  it("accepts application/json with a charset", async () => {
    const res = await call(PATH, {
      method: "POST",
      headers: {
        "x-api-key": MASTER.ORG_CREATE,
        "idempotency-key": uniq(),
        "content-type": "application/json; charset=utf-8",
      },
      body: JSON.stringify(orgBody()),
    });
    expect(res.status).toBe(201);
  });

  it("413 for a body over 64 KiB, nothing written", async () => {
    const body = orgBody({ padding: "x".repeat(64 * 1024) });
    const res = await createOrg(body);
    expect(res.status).toBe(413);
    expect((await res.json<any>()).error).toBe("PAYLOAD_TOO_LARGE");
    expect(await countRows("organizations", "org_id = ?", body.org_id)).toBe(0);
  });

  it("413 for a streamed body over 64 KiB without a Content-Length", async () => {
    const chunk = new TextEncoder().encode("x".repeat(16 * 1024));
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"pad":"'));
        for (let i = 0; i < 5; i++) controller.enqueue(chunk);
        controller.enqueue(new TextEncoder().encode('"}'));
        controller.close();
      },
    });
    const res = await call(PATH, {
      method: "POST",
      headers: { "x-api-key": MASTER.ORG_CREATE, "idempotency-key": uniq(), "content-type": "application/json" },
      body: stream,
    });
    expect(res.status).toBe(413);
  });

  it("ignores unknown fields", async () => {
    const body = orgBody({ extra: "ignored", __proto__: { polluted: true } });
    expect((await createOrg(body)).status).toBe(201);
    expect(({} as any).polluted).toBeUndefined();
  });
});

describe("POST /v1/admin/org/create: idempotency", () => {
  it("replays the same key and body without the api_key", async () => {
    const body = orgBody();
    const key = uniq();
    const first = await (await createOrg(body, key)).json<any>();
    const res = await createOrg(body, key);
    expect(res.status).toBe(201);
    expect(res.headers.get("idempotent-replayed")).toBe("true");
    const replay = await res.json<any>();
    expect(replay).toMatchObject({
      org_id: body.org_id,
      prefix: first.prefix,
      server_prefix: first.server_prefix,
      created_at: first.created_at,
      already_provisioned: true,
    });
    expect(replay.api_key).toBeUndefined();
    expect(replay.server_api_key).toBeUndefined();
    expect(JSON.stringify(replay)).not.toMatch(PLAINTEXT_KEY_PATTERN);
    expect(replay.request_id).not.toBe(first.request_id);
    expect(res.headers.get("x-request-id")).toBe(replay.request_id);
    expect(await countRows("api_keys", "org_id = ?", body.org_id)).toBe(2);
    expect(await countRows("audit_log", "org_id = ? AND event_type = 'ORG_CREATED'", body.org_id)).toBe(1);
  });

  it("treats the same body with other formatting, key order or origin separators as the same request", async () => {
    const body = orgBody({ allowed_origins: "https://a.example.com, https://b.example.com" });
    const key = uniq();
    expect((await createOrg(body, key)).status).toBe(201);
    const reordered = {
      allowed_origins: ["https://a.example.com", "https://b.example.com"],
      tier: body.tier,
      domain: body.domain,
      name: ` ${body.name} `,
      org_id: body.org_id,
    };
    const res = await createOrg(reordered, key);
    expect(res.headers.get("idempotent-replayed")).toBe("true");
  });

  it("422 IDEMPOTENCY_KEY_REUSED for the same key with another body, nothing written", async () => {
    const key = uniq();
    const body = orgBody();
    expect((await createOrg(body, key)).status).toBe(201);
    const other = orgBody();
    const res = await createOrg(other, key);
    expect(res.status).toBe(422);
    expect((await res.json<any>()).error).toBe("IDEMPOTENCY_KEY_REUSED");
    expect(await countRows("organizations", "org_id = ?", other.org_id)).toBe(0);
    const sameIdOtherTier = await createOrg({ ...body, tier: "enterprise" }, key);
    expect(sameIdOtherTier.status).toBe(422);
  });

  it("409 ORG_EXISTS for an org_id created under another key", async () => {
    const body = orgBody();
    expect((await createOrg(body)).status).toBe(201);
    const res = await createOrg(body);
    expect(res.status).toBe(409);
    const json = await res.json<any>();
    expect(json.error).toBe("ORG_EXISTS");
    expect(await countRows("api_keys", "org_id = ?", body.org_id)).toBe(2);
  });

  it("20 concurrent requests with one key and body: exactly one carries api_key, none is a 5xx", async () => {
    const body = orgBody();
    const key = uniq();
    const responses = await Promise.all(Array.from({ length: 20 }, () => createOrg(body, key)));
    const bodies = await Promise.all(responses.map((r) => r.json<any>()));
    expect(responses.every((r) => r.status < 500)).toBe(true);
    expect(responses.map((r) => r.status).every((s) => s === 201)).toBe(true);
    expect(bodies.filter((b) => b.api_key).length).toBe(1);
    expect(bodies.filter((b) => b.already_provisioned).length).toBe(19);
    expect(new Set(bodies.map((b) => b.prefix)).size).toBe(1);
    expect(await countRows("api_keys", "org_id = ?", body.org_id)).toBe(2);
  });

  it("20 concurrent requests for one org_id with different keys: one 201, nineteen 409", async () => {
    const body = orgBody();
    const responses = await Promise.all(Array.from({ length: 20 }, () => createOrg(body, uniq())));
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(19);
    expect(await countRows("api_keys", "org_id = ?", body.org_id)).toBe(2);
    expect(await countRows("idempotency_keys", "response LIKE ?", `%"${body.org_id}"%`)).toBe(1);
  });

  it("the idempotency row holds the body's fingerprint and the sanitized response", async () => {
    const body = orgBody();
    const key = uniq();
    const created = await (await createOrg(body, key)).json<any>();
    const row = await env.DB.prepare("SELECT * FROM idempotency_keys WHERE endpoint = ? AND idempotency_key = ?")
      .bind("POST /v1/admin/org/create", key)
      .first<any>();
    expect(row.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(row.status_code).toBe(201);
    expect(JSON.parse(row.response)).toEqual({
      org_id: body.org_id,
      prefix: created.prefix,
      server_prefix: created.server_prefix,
      created_at: created.created_at,
    });
    expect(Date.parse(row.expires_at) - Date.parse(row.created_at)).toBeGreaterThanOrEqual(24 * 3600 * 1000);
  });
});

describe("POST /v1/admin/org/create: failures leave nothing written", () => {
  it("500 SERVER_MISCONFIGURED when API_KEY_PEPPER is unset", async () => {
    const before = await dumpDatabase();
    const body = orgBody();
    const res = await callWithEnv({ API_KEY_PEPPER: undefined }, PATH, {
      headers: { "x-api-key": MASTER.ORG_CREATE, "idempotency-key": uniq() },
      json: body,
    });
    expect(res.status).toBe(500);
    const json = await res.json<any>();
    expect(json.error).toBe("SERVER_MISCONFIGURED");
    expect(JSON.stringify(json)).not.toMatch(/pepper/i);
    expect(await dumpDatabase()).toBe(before);
  });

  it("one failing statement in the batch rolls back the org, the key, the audit row and the idempotency row", async () => {
    await env.DB.exec(
      "CREATE TRIGGER fail_org_created BEFORE INSERT ON audit_log WHEN NEW.event_type = 'ORG_CREATED' BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    );
    try {
      const before = await dumpDatabase();
      const body = orgBody();
      const key = uniq();
      const res = await createOrg(body, key);
      expect(res.status).toBe(500);
      const json = await res.json<any>();
      expect(json.error).toBe("INTERNAL");
      expect(JSON.stringify(json)).not.toMatch(/injected|INSERT|audit_log|SQLITE/);
      expect(await dumpDatabase()).toBe(before);
    } finally {
      await env.DB.exec("DROP TRIGGER fail_org_created");
    }
  });
});

describe("POST /v1/admin/org/create: D1 round trips", () => {
  it("a first create is one batch; a replay is two round trips", async () => {
    const body = orgBody();
    const key = uniq();
    const create = countingDb(env.DB);
    const first = await callWithEnv({ DB: create.db }, PATH, {
      headers: { "x-api-key": MASTER.ORG_CREATE, "idempotency-key": key },
      json: body,
    });
    expect(first.status).toBe(201);
    expect(create.counter.roundTrips).toBe(1);

    const replay = countingDb(env.DB);
    const second = await callWithEnv({ DB: replay.db }, PATH, {
      headers: { "x-api-key": MASTER.ORG_CREATE, "idempotency-key": key },
      json: body,
    });
    expect(second.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.counter.roundTrips).toBeLessThanOrEqual(2);
  });
});

describe("no plaintext key anywhere in D1 or the logs", () => {
  it("after creates, replays, conflicts and auth failures", async () => {
    const logged: string[] = [];
    for (const level of ["log", "info", "warn", "error", "debug"] as const) {
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void logged.push(args.map(String).join(" ")));
    }
    const plaintexts: string[] = [];
    for (let i = 0; i < 5; i++) {
      const body = orgBody();
      const key = uniq();
      const json = await (await createOrg(body, key)).json<any>();
      plaintexts.push(json.api_key);
      await createOrg(body, key); // replay
      await createOrg(body); // 409
      await call(PATH, { headers: { "x-api-key": json.api_key, "idempotency-key": uniq() }, json: orgBody() }); // 401
    }
    const dump = await dumpDatabase();
    for (const p of plaintexts) {
      expect(dump).not.toContain(p);
      expect(dump).not.toContain(p.slice(8)); // nor the random part alone
    }
    expect(dump).not.toMatch(PLAINTEXT_KEY_PATTERN);
    expect(dump).not.toContain(MASTER.ORG_CREATE);
    expect(dump).not.toContain(env.API_KEY_PEPPER);
    const logs = logged.join("\n");
    expect(logs).not.toMatch(PLAINTEXT_KEY_PATTERN);
    expect(logs).not.toContain(MASTER.ORG_CREATE);
    vi.restoreAllMocks();
  });
});

describe("409 IDEMPOTENCY_KEY_IN_USE", () => {
  it("when a key's row vanishes between the failed batch and the read (expired and swept in between)", async () => {
    // D1 as it would look in that instant: the batch fails on the idempotency row's primary key, the read finds no row.
    const vanishing = new Proxy(env.DB, {
      get(target, prop) {
        if (prop === "batch")
          return async () => {
            throw new Error("D1_ERROR: UNIQUE constraint failed: idempotency_keys.endpoint, idempotency_keys.idempotency_key: SQLITE_CONSTRAINT");
          };
        if (prop === "prepare")
          return (sql: string) => {
            const stmt = target.prepare(sql);
            if (!sql.includes("FROM idempotency_keys")) return stmt;
            return { bind: () => ({ first: async () => null }) };
          };
        const v = Reflect.get(target, prop);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const res = await callWithEnv({ DB: vanishing as D1Database }, PATH, {
      headers: { "x-api-key": MASTER.ORG_CREATE, "idempotency-key": uniq() },
      json: orgBody(),
    });
    expect(res.status).toBe(409);
    const json = await res.json<any>();
    expect(json).toMatchObject({ error: "IDEMPOTENCY_KEY_IN_USE", message: expect.stringContaining("retry") });
  });
});
