// Events to partners and orgs (docs/contract.md): endpoints, every event type, Standard Webhooks signatures (verified
// with the `standardwebhooks` package, not our code), retries, 410, dead letters, secret rotation, and an event in
// the same batch as its change. Deliveries go to a local receiver (scripts/webhook-receiver.mjs) that records them.
import { createMessageBatch, env } from "cloudflare:test";
import { Webhook } from "standardwebhooks";
import { describe, expect, it, vi } from "vitest";
import { EVENT_TYPES } from "../src/lib/data/events";
import { deliverDue, MAX_ATTEMPTS, reencryptSecrets, RETRY_DELAYS_SECONDS, signedHeaders, sweepWebhooks } from "../src/features/webhooks/delivery";
import { decryptSecret } from "../src/features/webhooks/secrets";
import { consumeUsage } from "../src/verify/usage";
import { linkIn, spyEmail, until } from "./email";
import {
  act,
  call,
  callWithEnv,
  countingDb,
  countRows,
  createPartner,
  dumpDatabase,
  makeOrg,
  PARTNER_ORGS,
  PLAINTEXT_KEY_PATTERN,
  provision,
  provisionBody,
  SCOPE_KEYS,
  uniq,
} from "./helpers";

const R = env.WEBHOOK_RECEIVER_URL;
const PARTNER_HOOKS = "/api/v1/partner/webhook-endpoints";
const ORG_HOOKS = "/v1/admin/webhook-endpoints";

interface Received {
  headers: Record<string, string>;
  body: string;
}
const received = async (path: string): Promise<Received[]> => (await fetch(`${R}/_received${path}`)).json();
const typesOf = (list: Received[]) => list.map((r) => (JSON.parse(r.body) as { type: string }).type);

const asPartner = (key: string, path: string, o: { method?: string; json?: unknown; headers?: Record<string, string> } = {}) =>
  call(path, { method: o.method ?? (o.json !== undefined ? "POST" : "GET"), headers: { "x-kelviq-partner-key": key, ...o.headers }, json: o.json });
const asServer = (key: string, path: string, o: { method?: string; json?: unknown; headers?: Record<string, string> } = {}) =>
  call(path, { method: o.method ?? (o.json !== undefined ? "POST" : "GET"), headers: { "x-api-key": key, ...o.headers }, json: o.json });

interface Endpoint {
  id: string;
  secret: string;
  url: string;
  status: string;
}

async function partnerEndpoint(partnerKey: string, path: string, eventTypes?: string[]) {
  const res = await asPartner(partnerKey, PARTNER_HOOKS, { json: { url: `${R}${path}`, ...(eventTypes ? { event_types: eventTypes } : {}) } });
  expect(res.status).toBe(201);
  return res.json<Endpoint>();
}

/** Runs the consumer (as the queue would) until nothing is due at `nowMs`; the queue's own consumer may run too. */
async function drain(nowMs = Date.now()) {
  for (let i = 0; i < 20; i++) {
    const r = await deliverDue(env as never, nowMs);
    if (r.delivered + r.retrying + r.failed === 0) {
      const busy = await countRows(
        "webhook_deliveries",
        "status = 'delivering' OR (status = 'pending' AND next_attempt_at <= ?)",
        new Date(nowMs).toISOString(),
      );
      if (busy === 0) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

const verify = (secret: string, r: Received) => new Webhook(secret).verify(r.body, r.headers) as { type: string; data: Record<string, unknown> };

describe("endpoints", () => {
  it("a partner creates one (201, whsec_ secret shown once), lists, gets and deletes it; another partner sees 404", async () => {
    const partner = await createPartner();
    const other = await createPartner();
    const path = `/ok/${uniq("crud")}`;
    const res = await asPartner(partner.partner_key, PARTNER_HOOKS, { json: { url: `${R}${path}`, event_types: ["key.rotated", "org.suspended"] } });
    expect(res.status).toBe(201);
    const created = await res.json<Endpoint & { event_types: string[] }>();
    expect(created.id).toMatch(/^whep_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(created).toMatchObject({ url: `${R}${path}`, event_types: ["key.rotated", "org.suspended"], status: "enabled" });

    const listed = await (await asPartner(partner.partner_key, PARTNER_HOOKS)).json<{ results: Record<string, unknown>[]; count: number }>();
    expect(listed.count).toBe(1);
    expect(listed.results[0]).not.toHaveProperty("secret");
    const got = await asPartner(partner.partner_key, `${PARTNER_HOOKS}/${created.id}`);
    expect(got.status).toBe(200);
    expect(JSON.stringify(await got.json())).not.toContain(created.secret);
    expect((await asPartner(other.partner_key, `${PARTNER_HOOKS}/${created.id}`)).status).toBe(404);
    expect((await asPartner(other.partner_key, `${PARTNER_HOOKS}/${created.id}`, { method: "DELETE" })).status).toBe(404);

    const deleted = await asPartner(partner.partner_key, `${PARTNER_HOOKS}/${created.id}`, { method: "DELETE" });
    expect(deleted.status).toBe(200);
    expect(await deleted.json()).toMatchObject({ deleted: true, id: created.id });
    expect((await asPartner(partner.partner_key, `${PARTNER_HOOKS}/${created.id}`)).status).toBe(404);
  }, 30_000);

  it("an org manages its own with the server key; a client key is 403, a retiring key cannot add one (403 KEY_RETIRING)", async () => {
    const org = await makeOrg();
    const res = await asServer(org.server_api_key, ORG_HOOKS, { json: { url: `${R}/ok/${uniq("org")}` } });
    expect(res.status).toBe(201);
    expect((await asServer(org.api_key, ORG_HOOKS)).status).toBe(403);
    expect((await asServer(org.server_api_key, ORG_HOOKS)).status).toBe(200);
    expect((await call(ORG_HOOKS)).status).toBe(401);
    expect((await call(PARTNER_HOOKS)).status).toBe(401);

    const rotated = await asServer(org.server_api_key, "/v1/admin/key/rotate", { json: { expire_previous_in_seconds: 600 } });
    expect(rotated.status).toBe(200);
    const retiring = await asServer(org.server_api_key, ORG_HOOKS, { json: { url: `${R}/ok/${uniq("org")}` } });
    expect(retiring.status).toBe(403);
    expect(((await retiring.json()) as { error: string }).error).toBe("KEY_RETIRING");
  }, 30_000);

  it("only https URLs with a host name (a local run also takes http://localhost and http://127.0.0.1): partner 400, org 422", async () => {
    const partner = await createPartner();
    const org = await makeOrg();
    for (const url of [
      "http://hooks.example.com/x",
      "ftp://hooks.example.com/x",
      "https://10.0.0.1/x",
      "https://[::1]/x",
      "https://user:pw@hooks.example.com/x",
      "https://intranet/x",
      "https://db.internal/x",
      "not a url",
      "http://169.254.169.254/latest",
    ]) {
      const p = await asPartner(partner.partner_key, PARTNER_HOOKS, { json: { url } });
      expect(p.status, url).toBe(400);
      expect(((await p.json()) as { details: { field: string }[] }).details[0].field).toBe("url");
      expect((await asServer(org.server_api_key, ORG_HOOKS, { json: { url } })).status, url).toBe(422);
    }
    for (const event_types of [[], ["key.nope"], ["key.rotated", "key.rotated"]]) {
      expect((await asPartner(partner.partner_key, PARTNER_HOOKS, { json: { url: "https://hooks.example.com/x", event_types } })).status).toBe(400);
    }
    expect((await asPartner(partner.partner_key, PARTNER_HOOKS, { json: { url: "https://hooks.example.com/x" } })).status).toBe(201);
    expect((await asPartner(partner.partner_key, PARTNER_HOOKS, { json: { url: "http://localhost:9/x" } })).status).toBe(201);
    // Not a local run: http is refused even for localhost.
    const prod = await callWithEnv({ PUBLIC_BASE_URL: "https://keys.example.com" as "" }, PARTNER_HOOKS, {
      headers: { "x-kelviq-partner-key": partner.partner_key },
      json: { url: "http://localhost:9/x" },
    });
    expect(prod.status).toBe(400);
  }, 30_000);

  it(`at most 10 endpoints per owner (409 WEBHOOK_ENDPOINT_LIMIT); a replay with the Idempotency-Key has no secret`, async () => {
    const partner = await createPartner();
    const idem = uniq("idem");
    const first = await asPartner(partner.partner_key, PARTNER_HOOKS, { json: { url: "https://hooks.example.com/0" }, headers: { "idempotency-key": idem } });
    expect(first.status).toBe(201);
    const firstBody = await first.json<Endpoint>();
    const replay = await asPartner(partner.partner_key, PARTNER_HOOKS, { json: { url: "https://hooks.example.com/0" }, headers: { "idempotency-key": idem } });
    expect(replay.status).toBe(201);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    const replayBody = await replay.json<Record<string, unknown>>();
    expect(replayBody.id).toBe(firstBody.id);
    expect(replayBody).not.toHaveProperty("secret");
    for (let i = 1; i < 10; i++)
      expect((await asPartner(partner.partner_key, PARTNER_HOOKS, { json: { url: `https://hooks.example.com/${i}` } })).status).toBe(201);
    const over = await asPartner(partner.partner_key, PARTNER_HOOKS, { json: { url: "https://hooks.example.com/10" } });
    expect(over.status).toBe(409);
    expect(((await over.json()) as { error: string }).error).toBe("WEBHOOK_ENDPOINT_LIMIT");
    expect(await countRows("webhook_endpoints", "owner_id = ?", partner.partner_id)).toBe(10);
  }, 30_000);

  it("without WEBHOOK_SECRET_KEY an endpoint cannot be created (500 SERVER_MISCONFIGURED) and nothing is written", async () => {
    const partner = await createPartner();
    const res = await callWithEnv({ WEBHOOK_SECRET_KEY: "" }, PARTNER_HOOKS, {
      headers: { "x-kelviq-partner-key": partner.partner_key },
      json: { url: "https://hooks.example.com/x" },
    });
    expect(res.status).toBe(500);
    expect(((await res.json()) as { error: string }).error).toBe("SERVER_MISCONFIGURED");
    expect(await countRows("webhook_endpoints", "owner_id = ?", partner.partner_id)).toBe(0);
  }, 30_000);
});

describe("error rows: status and body", () => {
  const errorOf = async (res: Response) => ({ status: res.status, error: ((await res.json()) as { error: string }).error });

  it("401 UNAUTHORIZED, 403 KEY_TYPE_NOT_ALLOWED, 404 NOT_FOUND, 400/422 VALIDATION_FAILED and 422 IDEMPOTENCY_KEY_REUSED", async () => {
    const org = await makeOrg();
    const partner = await createPartner();
    expect(await errorOf(await call(ORG_HOOKS))).toEqual({ status: 401, error: "UNAUTHORIZED" });
    expect(await errorOf(await call(PARTNER_HOOKS, { headers: { "x-kelviq-partner-key": "kvqp_nope" } }))).toEqual({ status: 401, error: "UNAUTHORIZED" });
    expect(await errorOf(await asServer(org.api_key, ORG_HOOKS))).toEqual({ status: 403, error: "KEY_TYPE_NOT_ALLOWED" });
    const missing = "whep_01JDA8Z3Q4W5E6R7T8Y9V0N1P2";
    expect(await errorOf(await asServer(org.server_api_key, `${ORG_HOOKS}/${missing}`))).toEqual({ status: 404, error: "NOT_FOUND" });
    expect(await errorOf(await asPartner(partner.partner_key, `${PARTNER_HOOKS}/${missing}/test`, { method: "POST" }))).toEqual({
      status: 404,
      error: "NOT_FOUND",
    });
    expect(await errorOf(await asServer(org.server_api_key, `${ORG_HOOKS}/not-an-id`))).toEqual({ status: 422, error: "VALIDATION_FAILED" });
    expect(await errorOf(await asPartner(partner.partner_key, `${PARTNER_HOOKS}/not-an-id`))).toEqual({ status: 400, error: "VALIDATION_FAILED" });
    const idem = uniq("idem");
    expect(
      (await asPartner(partner.partner_key, PARTNER_HOOKS, { json: { url: "https://hooks.example.com/a" }, headers: { "idempotency-key": idem } })).status,
    ).toBe(201);
    const reused = await asPartner(partner.partner_key, PARTNER_HOOKS, { json: { url: "https://hooks.example.com/b" }, headers: { "idempotency-key": idem } });
    expect(await errorOf(reused)).toEqual({ status: 422, error: "IDEMPOTENCY_KEY_REUSED" });
    // Billing's ?reason= takes three values.
    const bad = await call(`/v1/admin/billing/org/${org.org_id}/suspend?reason=boredom`, {
      method: "POST",
      headers: { "x-api-key": SCOPE_KEYS.BILLING_SUSPEND, "idempotency-key": uniq("b") },
    });
    expect(await errorOf(bad)).toEqual({ status: 422, error: "VALIDATION_FAILED" });
  });

  it("409 WEBHOOK_ENDPOINT_DISABLED after a 410", async () => {
    const partner = await createPartner();
    const endpoint = await partnerEndpoint(partner.partner_key, `/status/410/${uniq("gone")}`);
    await asPartner(partner.partner_key, `${PARTNER_HOOKS}/${endpoint.id}/test`, { method: "POST" });
    await drain();
    await until(async () => (await (await asPartner(partner.partner_key, `${PARTNER_HOOKS}/${endpoint.id}`)).json<{ status: string }>()).status === "disabled");
    expect(await errorOf(await asPartner(partner.partner_key, `${PARTNER_HOOKS}/${endpoint.id}/test`, { method: "POST" }))).toEqual({
      status: 409,
      error: "WEBHOOK_ENDPOINT_DISABLED",
    });
  }, 30_000);
});

describe("events", () => {
  it("a partner hears every change to its orgs, each event type, signed (standardwebhooks verifies), with ids and prefixes only", async () => {
    const partner = await createPartner();
    const path = `/ok/${uniq("all")}`;
    const endpoint = await partnerEndpoint(partner.partner_key, path);
    const { sent } = spyEmail();
    const body = provisionBody();
    const org = await (await provision(partner.partner_key, body)).json<{ organizationIdentifier: string; clientKey: string; serverKey: string }>();
    const { org_id: orgId } = (await env.DB.prepare("SELECT org_id FROM organizations WHERE identifier = ?")
      .bind(org.organizationIdentifier)
      .first<{ org_id: string }>())!;

    const mail = await until(async () => sent.find((m) => m.to === body.email));
    expect((await call("/api/v1/auth/set-password", { json: { token: linkIn(mail)!, password: "a fine long password" } })).status).toBe(200);

    const rotated = await asPartner(partner.partner_key, `${PARTNER_ORGS}/${org.organizationIdentifier}/rotate-keys/`, {
      json: { expire_previous_in_seconds: 7200 },
    });
    expect(rotated.status).toBe(200);
    const keys = await rotated.json<{ clientKey: string; serverKey: string }>();
    // The cron, as the window runs out (the window's end is moved closer instead of waiting two hours).
    const windowEnds = (inMs: number) =>
      env.DB.prepare("UPDATE api_keys SET expires_at = ? WHERE org_id = ? AND expires_at IS NOT NULL")
        .bind(new Date(Date.now() + inMs).toISOString(), orgId)
        .run();
    const timeEvents = () => countRows("webhook_events", "org_id = ? AND type IN ('key.expiring', 'key.expired')", orgId);
    await sweepWebhooks(env as never);
    expect(await timeEvents()).toBe(2); // key.expiring: ends within 24 hours (client and server key)
    await sweepWebhooks(env as never);
    expect(await timeEvents()).toBe(2); // once each
    await windowEnds(30 * 60_000);
    await sweepWebhooks(env as never);
    expect(await timeEvents()).toBe(4); // key.expiring: ends within 1 hour
    await windowEnds(-1000);
    await sweepWebhooks(env as never);
    await sweepWebhooks(env as never);
    expect(await timeEvents()).toBe(6); // key.expired, once

    expect((await act("suspend", orgId)).status).toBe(200);
    expect((await act("reactivate", orgId)).status).toBe(200);

    const usage = (count: number) =>
      createMessageBatch("org-key-authority-usage", [
        { id: uniq("m"), timestamp: new Date(), attempts: 1, body: { org_id: orgId, day: new Date().toISOString().slice(0, 10), count } },
      ]);
    await consumeUsage(usage(8_000), env); // 80 % of starter's 10,000
    await consumeUsage(usage(100), env); // still 80 %: nothing new
    await consumeUsage(usage(1_900), env); // 100 %

    expect((await call("/v1/keys/revoke-leaked", { json: { keys: [keys.serverKey] } })).status).toBe(202);
    const billing = (action: string, reason: string) =>
      call(`/v1/admin/billing/org/${orgId}/${action}?reason=${reason}`, {
        method: "POST",
        headers: { "x-api-key": SCOPE_KEYS[action === "suspend" ? "BILLING_SUSPEND" : "BILLING_ROTATE"], "idempotency-key": uniq("b") },
      });
    expect((await billing("suspend", "dispute")).status).toBe(200);
    expect((await billing("rotate", "dispute")).status).toBe(200);
    expect((await act("force-revoke", orgId)).status).toBe(200);

    await drain();
    const written = (await env.DB.prepare("SELECT type FROM webhook_events WHERE org_id = ?").bind(orgId).all<{ type: string }>()).results.map((r) => r.type);
    expect(new Set(written)).toEqual(new Set(EVENT_TYPES));
    const got = await until(async () => {
      const list = await received(path);
      return new Set(typesOf(list)).size === EVENT_TYPES.length && list;
    });
    const events = got.map((r) => ({ id: r.headers["webhook-id"], ...verify(endpoint.secret, r) }));
    expect(new Set(events.map((e) => e.type))).toEqual(new Set(EVENT_TYPES));
    const of = (type: string) => events.filter((e) => e.type === type).map((e) => e.data);

    expect(of("org.created")).toEqual([expect.objectContaining({ org_id: orgId, external_id: body.externalId })]);
    expect(of("key.created").length).toBe(4); // provisioned, then billing rotate over HTTPS mints a new pair
    expect(of("owner.activated")).toEqual([expect.objectContaining({ org_id: orgId })]);
    const rotatedEvents = of("key.rotated");
    expect(rotatedEvents).toHaveLength(2);
    expect(rotatedEvents.find((d) => d.key_type === "sk_live")).toMatchObject({
      key_prefix: keys.serverKey.slice(0, 16),
      previous_key_prefix: org.serverKey.slice(0, 16),
      previous_key_expires_at: expect.any(String),
    });
    expect(
      of("key.expiring")
        .map((d) => d.notice)
        .sort(),
    ).toEqual(["1h", "1h", "24h", "24h"]);
    expect(of("key.expired")).toHaveLength(2);
    expect(
      of("key.expired")
        .map((d) => d.key_prefix)
        .sort(),
    ).toEqual([org.clientKey.slice(0, 16), org.serverKey.slice(0, 16)].sort());
    expect(of("org.suspended").map((d) => d.reason)).toEqual(["ops", "dispute"]);
    expect(of("org.reactivated").map((d) => d.reason)).toEqual(["ops", "dispute"]);
    expect(of("usage.threshold_reached").map((d) => d.threshold_percent)).toEqual([80, 100]);
    expect(of("key.exposed")).toEqual([expect.objectContaining({ key_prefix: keys.serverKey.slice(0, 16), revoked: true, source: "report" })]);
    expect(of("key.revoked").map((d) => d.reason)).toEqual(expect.arrayContaining(["exposed", "billing_suspended", "org_revoked"]));
    expect(of("org.revoked")).toHaveLength(1);
    // Never a key, a secret or the owner's email in what partners receive.
    const all = got.map((r) => r.body).join("\n");
    expect(all).not.toMatch(PLAINTEXT_KEY_PATTERN);
    expect(all).not.toContain(body.email);
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
  }, 30_000);

  it("an org hears its own events; an endpoint with event_types gets only those; webhook-timestamp is now", async () => {
    const partner = await createPartner();
    const filtered = `/ok/${uniq("filtered")}`;
    await partnerEndpoint(partner.partner_key, filtered, ["org.suspended"]);
    const provisioned = await (await provision(partner.partner_key, provisionBody())).json<{ organizationIdentifier: string; serverKey: string }>();
    const { org_id: orgId } = (await env.DB.prepare("SELECT org_id FROM organizations WHERE identifier = ?")
      .bind(provisioned.organizationIdentifier)
      .first<{ org_id: string }>())!;
    const own = `/ok/${uniq("own")}`;
    const created = await asServer(provisioned.serverKey, ORG_HOOKS, { json: { url: `${R}${own}` } });
    const endpoint = await created.json<Endpoint>();
    const rotated = await asServer(provisioned.serverKey, "/v1/admin/key/rotate", { json: { key_type: "ck_live", expire_previous_in_seconds: 3600 } });
    expect(rotated.status).toBe(200);
    const newKey = (await rotated.json<{ new_api_key: string }>()).new_api_key;
    expect((await act("suspend", orgId)).status).toBe(200);
    await drain();
    const mine = await until(async () => {
      const list = await received(own);
      return list.length >= 2 && list;
    });
    const events = mine.map((r) => verify(endpoint.secret, r));
    expect(events.map((e) => e.type)).toEqual(["key.rotated", "org.suspended"]);
    expect(events[0].data).toMatchObject({ org_id: orgId, key_type: "ck_live", key_prefix: newKey.slice(0, 16), previous_key_expires_at: expect.any(String) });
    expect(Math.abs(Number(mine[0].headers["webhook-timestamp"]) - Date.now() / 1000)).toBeLessThan(60);
    const theirs = await until(async () => {
      const list = await received(filtered);
      return list.length >= 1 && list;
    });
    expect(typesOf(theirs)).toEqual(["org.suspended"]);
  }, 30_000);

  it("a partner hears key.exposed for its own partner key (revoked by the report); a second report changes nothing", async () => {
    const partner = await createPartner();
    const path = `/ok/${uniq("pk")}`;
    const endpoint = await partnerEndpoint(partner.partner_key, path, ["key.exposed"]);
    expect((await call("/v1/keys/revoke-leaked", { json: { keys: [partner.partner_key] } })).status).toBe(202);
    expect((await call("/v1/keys/revoke-leaked", { json: { keys: [partner.partner_key] } })).status).toBe(202);
    expect(await countRows("webhook_events", "partner_id = ? AND type = 'key.exposed'", partner.partner_id)).toBe(1);
    await drain();
    const [got] = await until(async () => {
      const list = await received(path);
      return list.length >= 1 && list;
    });
    expect(verify(endpoint.secret, got).data).toMatchObject({
      partner_id: partner.partner_id,
      key_type: "kvqp",
      key_prefix: partner.partner_key.slice(0, 13),
      revoked: true,
    });
  }, 30_000);

  it("an event and its change are one batch: a forced failure leaves neither, and a failing event insert blocks the change", async () => {
    const org = await makeOrg();
    const before = await countRows("webhook_events", "org_id = ?", org.org_id);
    await env.DB.exec(
      "CREATE TRIGGER fail_suspend_audit BEFORE INSERT ON audit_log WHEN NEW.event_type = 'ADMIN_ORG_SUSPEND' BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    );
    try {
      expect((await act("suspend", org.org_id)).status).toBe(500);
    } finally {
      await env.DB.exec("DROP TRIGGER fail_suspend_audit");
    }
    expect((await env.DB.prepare("SELECT status FROM organizations WHERE org_id = ?").bind(org.org_id).first<{ status: string }>())!.status).toBe("active");
    expect(await countRows("webhook_events", "org_id = ?", org.org_id)).toBe(before);

    await env.DB.exec(
      "CREATE TRIGGER fail_event BEFORE INSERT ON webhook_events WHEN NEW.type = 'org.suspended' BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    );
    try {
      expect((await act("suspend", org.org_id)).status).toBe(500);
    } finally {
      await env.DB.exec("DROP TRIGGER fail_event");
    }
    expect((await env.DB.prepare("SELECT status FROM organizations WHERE org_id = ?").bind(org.org_id).first<{ status: string }>())!.status).toBe("active");

    expect((await act("suspend", org.org_id)).status).toBe(200);
    expect(await countRows("webhook_events", "org_id = ? AND type = 'org.suspended'", org.org_id)).toBe(1);
  }, 30_000);

  it("the API's D1 round trips are the same with endpoints registered (the fan-out runs inside the batch)", async () => {
    const measure = async (withEndpoint: boolean) => {
      const org = await makeOrg();
      if (withEndpoint) for (let i = 0; i < 3; i++) await asServer(org.server_api_key, ORG_HOOKS, { json: { url: `${R}/ok/${uniq("rt")}` } });
      const counting = countingDb(env.DB);
      const res = await callWithEnv({ DB: counting.db }, "/v1/admin/key/rotate", {
        headers: { "x-api-key": org.server_api_key },
        json: { key_type: "ck_live" },
      });
      expect(res.status).toBe(200);
      const suspend = countingDb(env.DB);
      const s = await callWithEnv({ DB: suspend.db }, `/v1/admin/org/${org.org_id}/suspend`, {
        headers: { "x-api-key": SCOPE_KEYS.ORG_SUSPEND, "idempotency-key": uniq("s") },
        json: { confirm_org_id: org.org_id },
      });
      expect(s.status).toBe(200);
      return [counting.counter.roundTrips, suspend.counter.roundTrips];
    };
    const [without, withOne] = [await measure(false), await measure(true)];
    expect(withOne).toEqual(without);
    expect(await countRows("webhook_deliveries", "endpoint_id IN (SELECT id FROM webhook_endpoints WHERE url LIKE '%/ok/rt_%')")).toBeGreaterThanOrEqual(6);
  }, 30_000);
});

describe("delivery", () => {
  it("a receiver that fails twice then succeeds: three attempts of one webhook-id on the schedule, all visible", async () => {
    const partner = await createPartner();
    const path = `/flaky/2/${uniq("flaky")}`;
    const endpoint = await partnerEndpoint(partner.partner_key, path);
    const test = await asPartner(partner.partner_key, `${PARTNER_HOOKS}/${endpoint.id}/test`, { method: "POST" });
    expect(test.status).toBe(202);
    const { event_id: eventId } = await test.json<{ event_id: string }>();
    const t0 = Date.now();
    await drain(t0);
    await until(async () => (await received(path)).length >= 1);
    await drain(t0 + (RETRY_DELAYS_SECONDS[0] + 1) * 1000);
    await until(async () => (await received(path)).length >= 2);
    await drain(t0 + (RETRY_DELAYS_SECONDS[0] + RETRY_DELAYS_SECONDS[1] + 2) * 1000);
    const got = await until(async () => {
      const list = await received(path);
      return list.length >= 3 && list;
    });
    expect(got.map((r) => r.headers["webhook-id"])).toEqual([eventId, eventId, eventId]);
    // The test receiver does not check; the library does (the first attempt's timestamp is now).
    expect(verify(endpoint.secret, got[0]).type).toBe("webhook.test");
    expect(got[0].body).toBe(got[2].body);

    const attempts = await (await asPartner(partner.partner_key, `${PARTNER_HOOKS}/${endpoint.id}/attempts`)).json<{ results: Record<string, unknown>[] }>();
    expect(attempts.results.map((a) => a.status_code)).toEqual([204, 500, 500]);
    expect(attempts.results.map((a) => a.attempt)).toEqual([3, 2, 1]);
    expect(attempts.results[2].next_attempt_at).toEqual(expect.any(String));
    expect(attempts.results[0]).toMatchObject({ event_id: eventId, event_type: "webhook.test", next_attempt_at: null, delivery_status: "delivered" });

    // Replay: once more, now, with the same webhook-id.
    const replay = await asPartner(partner.partner_key, `${PARTNER_HOOKS}/${endpoint.id}/events/${eventId}/replay`, { method: "POST" });
    expect(replay.status).toBe(202);
    await drain();
    const after = await until(async () => {
      const list = await received(path);
      return list.length >= 4 && list;
    });
    expect(after[3].headers["webhook-id"]).toBe(eventId);
    expect(
      (await asPartner(partner.partner_key, `${PARTNER_HOOKS}/${endpoint.id}/events/msg_00000000000000000000000000/replay`, { method: "POST" })).status,
    ).toBe(404);
  }, 30_000);

  it("410 Gone disables the endpoint: no more deliveries, test and replay answer 409", async () => {
    const partner = await createPartner();
    const path = `/status/410/${uniq("gone")}`;
    const endpoint = await partnerEndpoint(partner.partner_key, path);
    const { event_id: eventId } = await (await asPartner(partner.partner_key, `${PARTNER_HOOKS}/${endpoint.id}/test`, { method: "POST" })).json<{
      event_id: string;
    }>();
    await drain();
    await until(async () => (await received(path)).length === 1);
    const disabled = await until(async () => {
      const e = await (await asPartner(partner.partner_key, `${PARTNER_HOOKS}/${endpoint.id}`)).json<{ status: string; status_reason: string }>();
      return e.status === "disabled" && e;
    });
    expect(disabled.status_reason).toMatch(/410/);
    await provision(partner.partner_key, provisionBody());
    expect(await countRows("webhook_deliveries", "endpoint_id = ?", endpoint.id)).toBe(1);
    expect((await asPartner(partner.partner_key, `${PARTNER_HOOKS}/${endpoint.id}/test`, { method: "POST" })).status).toBe(409);
    expect((await asPartner(partner.partner_key, `${PARTNER_HOOKS}/${endpoint.id}/events/${eventId}/replay`, { method: "POST" })).status).toBe(409);
  }, 30_000);

  it(`after ${MAX_ATTEMPTS} failed attempts (about three days) the delivery goes to the dead-letter queue and the endpoint is failing; a success enables it again`, async () => {
    const total = RETRY_DELAYS_SECONDS.reduce((a, b) => a + b, 0);
    expect(total / 3600).toBeGreaterThan(66);
    expect(total / 3600).toBeLessThan(78);
    const partner = await createPartner();
    const path = `/status/503/${uniq("down")}`;
    const endpoint = await partnerEndpoint(partner.partner_key, path);
    const dlq = vi.spyOn(env.WEBHOOK_DEAD_LETTER_QUEUE, "sendBatch");
    const { event_id: eventId } = await (await asPartner(partner.partner_key, `${PARTNER_HOOKS}/${endpoint.id}/test`, { method: "POST" })).json<{
      event_id: string;
    }>();
    let t = Date.now();
    await drain(t);
    await until(async () => (await received(path)).length === 1);
    for (const delay of RETRY_DELAYS_SECONDS) {
      t += (delay + 1) * 1000;
      await drain(t);
    }
    expect((await received(path)).length).toBe(MAX_ATTEMPTS);
    const row = await env.DB.prepare("SELECT status, attempts, last_status_code FROM webhook_deliveries WHERE event_id = ?").bind(eventId).first();
    expect(row).toEqual({ status: "failed", attempts: MAX_ATTEMPTS, last_status_code: 503 });
    expect(dlq).toHaveBeenCalledWith([
      { body: expect.objectContaining({ event_id: eventId, endpoint_id: endpoint.id, attempts: MAX_ATTEMPTS, last_status_code: 503 }) },
    ]);
    const e = await (await asPartner(partner.partner_key, `${PARTNER_HOOKS}/${endpoint.id}`)).json<{ status: string }>();
    expect(e.status).toBe("failing");
    dlq.mockRestore();

    // Still failing endpoints get new events; once one succeeds (here: the endpoint moved), it is enabled again.
    await env.DB.prepare("UPDATE webhook_endpoints SET url = ? WHERE id = ?")
      .bind(`${R}/ok/${uniq("back")}`, endpoint.id)
      .run();
    expect((await asPartner(partner.partner_key, `${PARTNER_HOOKS}/${endpoint.id}/test`, { method: "POST" })).status).toBe(202);
    await drain();
    await until(async () => (await (await asPartner(partner.partner_key, `${PARTNER_HOOKS}/${endpoint.id}`)).json<{ status: string }>()).status === "enabled");
  }, 30_000);

  it("rotating the secret: for 24 hours both secrets sign each delivery (either verifies), then only the new one", async () => {
    const partner = await createPartner();
    const path = `/ok/${uniq("rotate")}`;
    const endpoint = await partnerEndpoint(partner.partner_key, path);
    const res = await asPartner(partner.partner_key, `${PARTNER_HOOKS}/${endpoint.id}/rotate-secret`, { method: "POST" });
    expect(res.status).toBe(200);
    const rotated = await res.json<{ secret: string; previous_secret_expires_at: string }>();
    expect(rotated.secret).not.toBe(endpoint.secret);
    expect(Date.parse(rotated.previous_secret_expires_at) - Date.now()).toBeGreaterThan(23.9 * 3600_000);
    await asPartner(partner.partner_key, `${PARTNER_HOOKS}/${endpoint.id}/test`, { method: "POST" });
    await drain();
    const [first] = await until(async () => {
      const list = await received(path);
      return list.length >= 1 && list;
    });
    expect(first.headers["webhook-signature"].split(" ")).toHaveLength(2);
    expect(verify(endpoint.secret, first).type).toBe("webhook.test");
    expect(verify(rotated.secret, first).type).toBe("webhook.test");
    expect(() => verify(`whsec_${btoa("x".repeat(32))}`, first)).toThrow();

    // Past the overlap only the new secret signs (the library checks the timestamp, so this one is read by hand).
    await asPartner(partner.partner_key, `${PARTNER_HOOKS}/${endpoint.id}/test`, { method: "POST" });
    await drain(Date.now() + 25 * 3600_000);
    const later = await until(async () => {
      const list = await received(path);
      return list.length >= 2 && list[1];
    });
    expect(later.headers["webhook-signature"].split(" ")).toHaveLength(1);
  }, 30_000);

  it("secrets are stored encrypted: the whole database holds no signing secret (nor its base64) and no key", async () => {
    const partner = await createPartner();
    const org = await makeOrg();
    const a = await partnerEndpoint(partner.partner_key, `/ok/${uniq("scan")}`);
    const b = await (await asServer(org.server_api_key, ORG_HOOKS, { json: { url: `${R}/ok/${uniq("scan")}` } })).json<Endpoint>();
    const c = await (await asPartner(partner.partner_key, `${PARTNER_HOOKS}/${a.id}/rotate-secret`, { method: "POST" })).json<Endpoint>();
    await asPartner(partner.partner_key, `${PARTNER_HOOKS}/${a.id}/test`, { method: "POST" });
    await drain();
    const dump = await dumpDatabase();
    for (const secret of [a.secret, b.secret, c.secret]) {
      expect(dump).not.toContain(secret);
      expect(dump).not.toContain(secret.slice("whsec_".length, -1));
    }
    expect(dump).not.toMatch(/whsec_/);
    expect(dump).not.toMatch(PLAINTEXT_KEY_PATTERN);
  }, 30_000);

  it("WEBHOOK_SECRET_KEY rotates: the cron re-encrypts every secret under the new key, and deliveries still verify", async () => {
    const partner = await createPartner();
    const path = `/ok/${uniq("rekey")}`;
    const endpoint = await partnerEndpoint(partner.partner_key, path);
    const rekeyed = { ...env, WEBHOOK_SECRET_KEY: "a-brand-new-webhook-secret-key-0123456789abcdef", WEBHOOK_SECRET_KEY_PREVIOUS: env.WEBHOOK_SECRET_KEY };
    const before = await env.DB.prepare("SELECT secret_key_id FROM webhook_endpoints WHERE id = ?").bind(endpoint.id).first<{ secret_key_id: string }>();
    let moved = 0;
    for (let n = await reencryptSecrets(rekeyed as never); n > 0; n = await reencryptSecrets(rekeyed as never)) moved += n;
    expect(moved).toBeGreaterThanOrEqual(1);
    const after = await env.DB.prepare("SELECT secret_key_id FROM webhook_endpoints WHERE id = ?").bind(endpoint.id).first<{ secret_key_id: string }>();
    expect(after!.secret_key_id).not.toBe(before!.secret_key_id);
    // With only the new key, the stored secret still decrypts to the one the owner holds, and what it signs verifies.
    const onlyNew = { ...rekeyed, WEBHOOK_SECRET_KEY_PREVIOUS: "" };
    const row = await env.DB.prepare("SELECT secret_ciphertext FROM webhook_endpoints WHERE id = ?").bind(endpoint.id).first<{ secret_ciphertext: string }>();
    const secret = await decryptSecret(onlyNew, endpoint.id, row!.secret_ciphertext);
    expect(secret).not.toBeNull();
    expect(await decryptSecret({ WEBHOOK_SECRET_KEY: env.WEBHOOK_SECRET_KEY }, endpoint.id, row!.secret_ciphertext)).toBeNull();
    const body = JSON.stringify({ type: "webhook.test", timestamp: new Date().toISOString(), data: {} });
    const headers = await signedHeaders([secret!], "msg_0123456789abcdef0123456789", Math.floor(Date.now() / 1000), body);
    expect(verify(endpoint.secret, { headers, body }).type).toBe("webhook.test");
  }, 30_000);
});
