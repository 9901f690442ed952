// Property-based hostile input against every route: random and malformed JSON, wrong types, huge strings, unicode
// edge cases, injection strings, prototype-pollution keys, duplicate keys, wrong methods and content types.
// Whatever comes in: never a 5xx, never a stack trace or SQL in a body, never a partial write.
import { env } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import type { BillingRpc } from "../src/billing/entrypoint";
import { hashPassword } from "../src/features/onboarding/crypto";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { call, createPartner, makeOrg, MASTER, PARTNER_ORGS, provision, provisionBody, SCOPE_KEYS } from "./helpers";

// The tables requests write (password_tokens and usage_daily are written by queue consumers, in the background).
// A refusal (404, 409) after validation is an Idempotency-Key's final result and is recorded as such (docs/contract.md):
// idempotency rows are counted by success here, and a refusal's own row is checked to hold that refusal.
const TABLES = ["organizations", "api_keys", "users", "partners", "outbox", "webhook_endpoints", "webhook_events", "webhook_deliveries"];
const counts = async () =>
  JSON.stringify(
    await env.DB.prepare(
      `SELECT ${TABLES.map((t) => `(SELECT COUNT(*) FROM ${t}) AS ${t}`).join(", ")}, (SELECT COUNT(*) FROM idempotency_keys WHERE status_code < 400) AS idempotency_keys`,
    ).first(),
  );

const LEAK = /\bat [\w.<>]+ \(|\n\s+at |D1_ERROR|SQLITE|TypeError|ReferenceError|SyntaxError: |undefined is not|stack/;

let cases = 0;

/** Sends one request and checks the invariants; `writes` says a 2xx may write (then the count check is skipped). */
async function probe(path: string, init: { method: string; headers?: Record<string, string>; body?: string }) {
  cases++;
  const before = await counts();
  const res = await call(path, { method: init.method, headers: init.headers, body: init.method === "GET" || init.method === "HEAD" ? undefined : init.body });
  const text = await res.text();
  expect(res.status, `${init.method} ${path} → ${res.status}: ${text.slice(0, 300)}`).toBeLessThan(500);
  expect(text).not.toMatch(LEAK);
  if (res.status >= 400) {
    expect(await counts(), `${init.method} ${path} wrote on a ${res.status}`).toBe(before);
    const idem = Object.entries(init.headers ?? {}).find(([k]) => k.toLowerCase() === "idempotency-key")?.[1];
    if (idem) {
      const { results } = await env.DB.prepare("SELECT status_code FROM idempotency_keys WHERE idempotency_key = ?").bind(idem).all<{ status_code: number }>();
      for (const r of results) expect([200, 201, res.status]).toContain(r.status_code);
    }
    // The API answers JSON; the console answers its pages.
    if (text && !path.startsWith("/console")) expect(() => JSON.parse(text)).not.toThrow();
  }
  return res.status;
}

// Strings that have broken services before ("${jndi:…}" is one of them, on purpose).
const nasty = fc.oneof(
  fc.string(),
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom(
    "",
    " ",
    "\u0000",
    "a\u0000b",
    "\uD800",
    "\uDFFF",
    "x\uD83Dy",
    "\u202Eevil\u202C",
    "\u200B",
    "\uFEFF",
    "🚀🔥💥",
    "👩‍👩‍👧‍👦",
    "Ünïcödé",
    "漢字",
    "'; DROP TABLE organizations; --",
    '" OR 1=1 --',
    "1; SELECT * FROM api_keys",
    "%' OR '%'='",
    "a\r\nX-Injected: yes",
    "\r\n\r\n<html>",
    "__proto__",
    "constructor",
    "prototype",
    "../../etc/passwd",
    "%00",
    "%s%s%n",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a template-injection probe, not a template
    "${jndi:ldap://x}",
    "<script>alert(1)</script>",
    "NaN",
    "-0",
    "1e309",
    "org_",
    "org_aaa",
    "org_valid_one",
    "https://acme.example.com",
    "http://localhost:3000",
    "ck_live_AAAAAAAAAAAAAAAAAAAAAAAAAA",
  ),
  fc.string({ minLength: 300, maxLength: 3000 }),
);
/** A path segment as a client could send it: percent-encoded (lone surrogates made well-formed), or raw garbage. */
const segment = (s: string) => encodeURIComponent(s.toWellFormed());
const rawSegments = fc.constantFrom("%", "%ZZ", "%E0%A4%A", "%00", "%2F", "..", ".", "%2e%2e", "a%20b", "%F0%9F%9A%80", "%C0%AF");
const pathPart = fc.oneof({ weight: 4, arbitrary: nasty.map(segment) }, { weight: 1, arbitrary: rawSegments });

const weird = fc.oneof(nasty, fc.jsonValue({ maxDepth: 3 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(nasty, { maxLength: 4 }));
/** A field: usually hostile, sometimes valid, sometimes missing. */
const field = (valid: fc.Arbitrary<unknown>) =>
  fc.option(fc.oneof({ weight: 3, arbitrary: weird }, { weight: 1, arbitrary: valid }), { nil: undefined, freq: 6 });
const prototypeKeys = fc.constantFrom('{"__proto__": {"polluted": true}}', '{"constructor": {"prototype": {"polluted": true}}}', '{"__proto__": null}');
const duplicateKeys = (a: string, b: string) => `{"${a}": "first", "${a}": ${JSON.stringify(b)}}`;

/** A body: a hostile object, random JSON, raw garbage, a prototype-pollution or a duplicate-key document. */
const body = (shape: fc.Arbitrary<Record<string, unknown>>, keys: string[]) =>
  fc.oneof(
    { weight: 6, arbitrary: shape.map((o) => JSON.stringify(o)) },
    { weight: 1, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
    { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
    { weight: 1, arbitrary: prototypeKeys },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...keys), nasty).map(([k, v]) => duplicateKeys(k, v)) },
  );

const json = (headers: Record<string, string> = {}) => ({ "content-type": "application/json", ...headers });
// The full suite is 13,200 generated cases (about 100 s); HOSTILE_CASES scales every property alike. `npm test` runs
// 2,500 by default, .ci/run the full 13,200.
const FULL = 14_400;
const TARGET = Number(env.HOSTILE_CASES ?? FULL);
const RUN = { numRuns: 0, endOnFailure: true };
const runs = (n: number) => ({ ...RUN, numRuns: Math.max(5, Math.round((n * TARGET) / FULL)) });

let consoleCookie: string;
let consoleOrg: string;
let partnerKey: string;
let orgKey: string;
let orgId: string;
let identifier: string;
beforeAll(async () => {
  partnerKey = (await createPartner("Fuzz Partner")).partner_key;
  const org = await makeOrg();
  orgKey = org.server_api_key;
  orgId = org.org_id;
  identifier = (await (await provision(partnerKey, provisionBody())).json<any>()).organizationIdentifier;
  // An owner signed in to the console, with an org made by a paid checkout.
  const owner = `fuzz.owner@example.com`;
  consoleOrg = "org_console_fuzz";
  const billing = exports.BillingService as unknown as BillingRpc;
  await billing.createOrg("evt_console_fuzz", {
    org_id: consoleOrg,
    name: "Fuzz Console",
    domain: "general",
    tier: "starter",
    allowed_origins: "https://a.example.com",
    owner_email: owner,
  });
  await env.DB.prepare("UPDATE users SET password_hash = ? WHERE email = ?")
    .bind(await hashPassword("fuzz console password"), owner)
    .run();
  const signIn = await call("/console/sign-in", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", "sec-fetch-site": "same-origin" },
    body: `email=${encodeURIComponent(owner)}&password=fuzz+console+password`,
  });
  consoleCookie = /(__Host-console=[^;]+)/.exec(signIn.headers.get("set-cookie") ?? "")![1];
});

describe("hostile input: never a 5xx, a leak or a partial write", () => {
  it("POST /v1/admin/org/create bodies", { timeout: 300_000 }, async () => {
    const shape = fc.record({
      org_id: field(fc.stringMatching(/^org_[a-z0-9_]{3,20}$/)),
      name: field(fc.string({ minLength: 1, maxLength: 50 })),
      domain: field(fc.constantFrom("general", "legal")),
      tier: field(fc.constantFrom("starter", "enterprise")),
      allowed_origins: field(fc.constantFrom("https://a.example.com", ["https://b.example.com", "http://localhost:1"])),
    });
    await fc.assert(
      fc.asyncProperty(body(shape, ["org_id", "name", "tier"]), fc.string({ minLength: 1, maxLength: 60 }), async (b, idem) => {
        await probe("/v1/admin/org/create", { method: "POST", headers: json({ "x-api-key": MASTER.ORG_CREATE, "idempotency-key": idem }), body: b });
      }),
      runs(2000),
    );
  });

  it("POST /api/v1/partner/organizations bodies", { timeout: 300_000 }, async () => {
    const shape = fc.record({
      externalId: field(fc.string({ minLength: 1, maxLength: 30 })),
      email: field(fc.emailAddress()),
      businessName: field(fc.string({ maxLength: 60 })),
    });
    await fc.assert(
      fc.asyncProperty(
        body(shape, ["externalId", "email", "businessName"]),
        fc.option(fc.string({ minLength: 1, maxLength: 40 }), { nil: undefined }),
        async (b, idem) => {
          await probe(PARTNER_ORGS, {
            method: "POST",
            headers: json({ "x-kelviq-partner-key": partnerKey, ...(idem ? { "idempotency-key": idem } : {}) }),
            body: b,
          });
        },
      ),
      runs(2000),
    );
  });

  it("POST /v1/admin/partners bodies", { timeout: 120_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(body(fc.record({ name: field(fc.string({ minLength: 1, maxLength: 30 })) }), ["name"]), async (b) => {
        await probe("/v1/admin/partners", {
          method: "POST",
          headers: json({ "x-api-key": MASTER.PARTNER_ADMIN, "idempotency-key": crypto.randomUUID() }),
          body: b,
        });
      }),
      runs(500),
    );
  });

  it("operator lifecycle: hostile org ids in the path and confirm bodies", { timeout: 300_000 }, async () => {
    const actions = [
      ["suspend", SCOPE_KEYS.ORG_SUSPEND],
      ["reactivate", SCOPE_KEYS.ORG_REACTIVATE],
      ["force-rotate", SCOPE_KEYS.ORG_FORCE_ROTATE],
      ["force-revoke", SCOPE_KEYS.ORG_FORCE_REVOKE],
    ] as const;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...actions),
        fc.oneof(pathPart, fc.constant("org_does_not_exist")),
        body(fc.record({ confirm_org_id: field(fc.constant("org_does_not_exist")), idempotency_key: field(fc.string({ minLength: 1, maxLength: 10 })) }), [
          "confirm_org_id",
        ]),
        async ([action, key], pathId, b) => {
          await probe(`/v1/admin/org/${pathId}/${action}`, {
            method: "POST",
            headers: json({ "x-api-key": key, "idempotency-key": crypto.randomUUID() }),
            body: b,
          });
        },
      ),
      runs(800),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom("suspend", "rotate"), pathPart, async (action, pathId) => {
        const key = action === "suspend" ? SCOPE_KEYS.BILLING_SUSPEND : SCOPE_KEYS.BILLING_ROTATE;
        await probe(`/v1/admin/billing/org/${pathId}/${action}`, { method: "POST", headers: { "x-api-key": key, "idempotency-key": crypto.randomUUID() } });
        await probe(`/v1/admin/org/${pathId}/usage`, { method: "GET", headers: { "x-api-key": SCOPE_KEYS.ORG_USAGE_READ } });
      }),
      runs(300),
    );
  });

  it("partner reads, lists and rotations: hostile path segments and query strings", { timeout: 300_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(pathPart, pathPart, fc.oneof(pathPart, fc.integer().map(String)), async (part, externalId, limit) => {
        const h = { "x-kelviq-partner-key": partnerKey };
        await probe(`${PARTNER_ORGS}/${part}/`, { method: "GET", headers: h });
        await probe(`${PARTNER_ORGS}/by-external-id/${externalId}/`, { method: "GET", headers: h });
        await probe(`${PARTNER_ORGS}/?external_id=${externalId}&limit=${limit}&cursor=${part}`, { method: "GET", headers: h });
      }),
      runs(500),
    );
    await fc.assert(
      fc.asyncProperty(fc.oneof(pathPart, fc.constant(identifier)), async (part) => {
        await probe(`${PARTNER_ORGS}/${part}/resend-invite/`, { method: "POST", headers: { "x-kelviq-partner-key": partnerKey } });
      }),
      runs(200),
    );
  });

  it("GET /v1/admin/audit-log filters", { timeout: 120_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(nasty, nasty, nasty, fc.oneof(nasty, fc.integer().map(String)), async (type, since, until, limit) => {
        const qs = new URLSearchParams({
          event_type: type.toWellFormed(),
          since: since.toWellFormed(),
          until: until.toWellFormed(),
          limit: limit.toWellFormed(),
        }).toString();
        await probe(`/v1/admin/audit-log?${qs}`, { method: "GET", headers: { "x-api-key": orgKey } });
      }),
      runs(600),
    );
  });

  it("console forms: hostile fields, org ids in the path, cookies and origins", { timeout: 300_000 }, async () => {
    // Any generated value as form text (objects without a prototype have no String(): JSON text instead).
    const asText = (v: unknown) => (typeof v === "string" ? v.toWellFormed() : (JSON.stringify(v) ?? ""));
    const formBody = (fields: Record<string, unknown>) =>
      Object.entries(fields)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(asText(v))}`)
        .join("&");
    const form = { "content-type": "application/x-www-form-urlencoded", "sec-fetch-site": "same-origin" };
    const action = fc.constantFrom("create", "rotate", "revoke");
    await fc.assert(
      fc.asyncProperty(
        action,
        fc.oneof({ weight: 3, arbitrary: fc.constant(consoleOrg) }, { weight: 1, arbitrary: pathPart }),
        field(fc.stringMatching(/^[0-9A-Za-z_-]{10,30}$/)),
        field(fc.constantFrom("ck_live", "sk_live")),
        field(fc.constantFrom("0", "3600", "86400")),
        fc.constantFrom<Record<string, string>>(
          {},
          { cookie: "__Host-console=forged" },
          { cookie: "__Host-console=" + "x".repeat(200) },
          { origin: "https://evil.example", "sec-fetch-site": "cross-site" },
        ),
        async (act, org, formId, keyType, window, extra) => {
          const headers = { ...form, cookie: consoleCookie, ...extra };
          await probe(`/console/orgs/${org}/keys/${act}`, { method: "POST", headers, body: formBody({ form_id: formId, key_type: keyType, window }) });
          await probe(
            `/console/orgs/${org}/${act === "create" ? "audit" : "keys"}?event_type=${encodeURIComponent(asText(keyType))}&before=${encodeURIComponent(asText(window))}`,
            { method: "GET", headers: { cookie: consoleCookie } },
          );
        },
      ),
      runs(600),
    );
    await fc.assert(
      fc.asyncProperty(field(fc.emailAddress()), field(fc.string({ maxLength: 60 })), fc.boolean(), async (email, password, forgot) => {
        await probe(forgot ? "/console/forgot" : "/console/sign-in", { method: "POST", headers: form, body: formBody({ email, password }) });
      }),
      runs(100), // a failed sign-in takes its 400 ms floor: few cases, slow ones
    );
  });

  it("leaked-key reports: possession bodies, and GitHub reports without a valid signature", { timeout: 120_000 }, async () => {
    const shape = fc.record({
      keys: field(
        fc.array(fc.oneof(nasty, fc.constantFrom("sk_live_AAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "kvqp_7M2K9Q4W_1E8R5T3Y6V0P2A4S6DB2C4D63HZKPYE")), {
          maxLength: 120,
        }),
      ),
    });
    await fc.assert(
      fc.asyncProperty(body(shape, ["keys"]), fc.option(nasty, { nil: undefined }), async (b, signature) => {
        await probe("/v1/keys/revoke-leaked", { method: "POST", headers: json(), body: b });
        const headers = json({
          "github-public-key-identifier": "a".repeat(64),
          ...(signature ? { "github-public-key-signature": signature.toWellFormed().replace(/[^\x20-\x7e]/g, "") } : {}),
        });
        expect(await probe("/v1/secret-scanning/github", { method: "POST", headers, body: b })).toBeGreaterThanOrEqual(400);
      }),
      runs(300),
    );
  });

  it("webhook endpoint bodies, for a partner and an org", { timeout: 120_000 }, async () => {
    const url = fc.oneof(
      nasty,
      fc.constantFrom(
        "https://hooks.example.com/x",
        "http://localhost:9/x",
        "http://127.0.0.1:9/x",
        "https://10.0.0.1/",
        "javascript:alert(1)",
        "https://a@b.example.com/",
      ),
    );
    const types = fc.oneof(
      nasty,
      fc.array(fc.oneof(nasty, fc.constantFrom("key.rotated", "org.suspended", "webhook.test")), { maxLength: 20 }),
      fc.constant(null),
    );
    const shape = fc.record({ url: field(url), event_types: field(types) });
    await fc.assert(
      fc.asyncProperty(body(shape, ["url"]), async (b) => {
        await probe("/api/v1/partner/webhook-endpoints", { method: "POST", headers: json({ "x-kelviq-partner-key": partnerKey }), body: b });
        await probe("/v1/admin/webhook-endpoints", { method: "POST", headers: json({ "x-api-key": orgKey }), body: b });
      }),
      runs(600),
    );
    // The endpoints it made would receive the events of later probes (and try to reach hosts that do not exist).
    await env.DB.exec("DELETE FROM webhook_endpoints");
  });

  it("set-password bodies", { timeout: 300_000 }, async () => {
    const shape = fc.record({ token: field(fc.stringMatching(/^[A-Za-z0-9_-]{43}$/)), password: field(fc.string({ minLength: 12, maxLength: 40 })) });
    await fc.assert(
      fc.asyncProperty(body(shape, ["token", "password"]), fc.boolean(), async (b, check) => {
        await probe(check ? "/api/v1/auth/set-password/check" : "/api/v1/auth/set-password", { method: "POST", headers: json(), body: b });
      }),
      runs(1000),
    );
  });

  it("every route with wrong methods, content types and credentials", { timeout: 300_000 }, async () => {
    const paths = [
      "/",
      "/openapi.json",
      "/set-password",
      "/v1/admin/org/create",
      `/v1/admin/org/${orgId}/usage`,
      "/v1/admin/org/usage",
      `/v1/admin/org/${orgId}/suspend`,
      `/v1/admin/billing/org/${orgId}/suspend`,
      "/v1/admin/partners",
      "/v1/admin/key/rotate",
      "/v1/admin/audit-log",
      "/v1/admin/keys",
      PARTNER_ORGS,
      `${PARTNER_ORGS}/${identifier}/`,
      `${PARTNER_ORGS}/${identifier}/rotate-keys/`,
      "/api/v1/auth/set-password",
      "/v1/secret-scanning/github",
      "/v1/keys/revoke-leaked",
      "/api/v1/partner/webhook-endpoints",
      "/api/v1/partner/webhook-endpoints/whep_01JDA8Z3Q4W5E6R7T8Y9V0N1P2/test",
      "/v1/admin/webhook-endpoints",
      "/v1/admin/webhook-endpoints/whep_01JDA8Z3Q4W5E6R7T8Y9V0N1P2/events/msg_0c4f6e2a9b1d3f5a7c9e1b3d5f/replay",
      "/v1/admin/webhook-endpoints/x/attempts",
      "/console",
      "/console/sign-in",
      "/console/forgot",
      `/console/orgs/${consoleOrg}/keys`,
      `/console/orgs/${consoleOrg}/keys/create`,
    ];
    const credentials = fc.constantFrom<Record<string, string>>(
      {},
      { "x-api-key": "nope" },
      { "x-api-key": orgKey.slice(0, -1) + "0" },
      { "x-kelviq-partner-key": "kvqp_x" },
      { authorization: "Bearer x" },
      { "x-api-key": MASTER.ORG_CREATE },
      { "x-kelviq-partner-key": orgKey },
      { cookie: consoleCookie, "sec-fetch-site": "same-origin" },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...paths),
        fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"),
        fc.constantFrom(
          "application/json",
          "text/plain",
          "application/x-www-form-urlencoded",
          "multipart/form-data; boundary=x",
          "application/json; charset=utf-16",
          "APPLICATION/JSON",
          "application/xml",
        ),
        credentials,
        fc.oneof(
          fc.jsonValue().map((v) => JSON.stringify(v)),
          fc.string({ maxLength: 100 }),
        ),
        async (path, method, contentType, creds, b) => {
          await probe(path, { method, headers: { "content-type": contentType, "idempotency-key": crypto.randomUUID(), ...creds }, body: b });
        },
      ),
      runs(1500),
    );
  });

  it("header values: Idempotency-Key and keys of every shape", { timeout: 120_000 }, async () => {
    const headerSafe = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 300 });
    await fc.assert(
      fc.asyncProperty(headerSafe, headerSafe, async (idem, key) => {
        await probe("/v1/admin/org/create", {
          method: "POST",
          headers: json({ "x-api-key": MASTER.ORG_CREATE, "idempotency-key": idem }),
          body: JSON.stringify({ org_id: "org_header_fuzz", name: "x", domain: "general", tier: "starter", allowed_origins: "https://a.example.com" }),
        });
        await probe(PARTNER_ORGS, { method: "GET", headers: { "x-kelviq-partner-key": key } });
      }),
      runs(300),
    );
  });

  it("regression: a name that looks like a key is an ordinary name (the suite found these answering 500)", async () => {
    for (const name of [`ck_live_${"A".repeat(26)}`, `kvqp_${"B".repeat(26)}`]) {
      const body = JSON.stringify({
        org_id: `org_lookalike_${name.length}${name[0]}`,
        name,
        domain: "general",
        tier: "starter",
        allowed_origins: "https://a.example.com",
      });
      const headers = json({ "x-api-key": MASTER.ORG_CREATE, "idempotency-key": `lookalike-${name}` });
      expect(await probe("/v1/admin/org/create", { method: "POST", headers, body })).toBe(201);
      expect(await probe("/v1/admin/org/create", { method: "POST", headers, body })).toBe(201); // the replay
      const partner = {
        method: "POST",
        headers: json({ "x-api-key": MASTER.PARTNER_ADMIN, "idempotency-key": `lookalike-p-${name}` }),
        body: JSON.stringify({ name }),
      };
      expect(await probe("/v1/admin/partners", partner)).toBe(201);
    }
  });

  it(`ran the configured number of cases (HOSTILE_CASES, ${TARGET}), and polluted no prototype`, () => {
    expect(cases).toBeGreaterThanOrEqual(Math.floor(TARGET * 0.98));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty("polluted");
    console.log(`hostile-input cases: ${cases}`);
  });
});
