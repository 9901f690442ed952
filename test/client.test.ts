// The typed client (client/index.ts) against the running service: typed calls, an Idempotency-Key on every POST
// that takes one, and retries that can never mint twice.
import { env } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createAuthorityClient } from "../client";
import { countRows, MASTER, SCOPE_KEYS, uniq } from "./helpers";

/** The Worker's own fetch handler, as a client across the network would reach it (each call from its own IP). */
const worker = (request: Request) => {
  const headers = new Headers(request.headers);
  headers.set("cf-connecting-ip", `198.51.100.${Math.floor(Math.random() * 250)}`);
  return exports.default.fetch(new Request(request, { headers }));
};
const BASE = "http://localhost";
/** A typed org body (the client refuses a domain or tier the API does not take, at compile time). */
const newOrg = () => ({
  org_id: uniq("org"),
  name: "Client Co",
  domain: "general" as const,
  tier: "starter" as const,
  allowed_origins: ["https://client.example.com"],
});

describe("the typed client", () => {
  it("creates an org (typed body and answer), with an Idempotency-Key it made itself", async () => {
    const operator = createAuthorityClient({ baseUrl: BASE, apiKey: MASTER.ORG_CREATE, fetch: worker });
    const body = newOrg();
    const { data, error, response } = await operator.POST("/v1/admin/org/create", { body });
    expect(error).toBeUndefined();
    expect(response.status).toBe(201);
    expect(data?.org_id).toBe(body.org_id);
    expect(data?.server_api_key).toMatch(/^sk_live_/);
    const row = await env.DB.prepare("SELECT idempotency_key FROM idempotency_keys WHERE endpoint = 'POST /v1/admin/org/create' AND response LIKE ?")
      .bind(`%${body.org_id}%`)
      .first<{ idempotency_key: string }>();
    expect(row?.idempotency_key).toMatch(/^[0-9a-f-]{36}$/);

    // The org's server key drives the self-serve API through the same client.
    const org = createAuthorityClient({ baseUrl: BASE, apiKey: data!.server_api_key!, fetch: worker });
    const keys = await org.GET("/v1/admin/keys", { params: { query: { limit: 10 } } });
    expect(keys.data?.results.map((k) => k.key_type).sort()).toEqual(["ck_live", "sk_live"]);
  });

  it("a response lost on the way back is retried with the same key: one org, one pair of keys, and the replay", async () => {
    let calls = 0;
    const flaky = async (request: Request) => {
      calls++;
      const res = await worker(request);
      if (calls === 1) throw new TypeError("network connection lost"); // the service did the work; the answer is lost
      return res;
    };
    const operator = createAuthorityClient({ baseUrl: BASE, apiKey: MASTER.ORG_CREATE, fetch: flaky, retryDelayMs: 1 });
    const body = newOrg();
    const { data, response } = await operator.POST("/v1/admin/org/create", { body });
    expect(calls).toBe(2);
    expect(response.status).toBe(201);
    expect(response.headers.get("idempotent-replayed")).toBe("true");
    expect(data).toMatchObject({ org_id: body.org_id, already_provisioned: true });
    expect(await countRows("organizations", "org_id = ?", body.org_id)).toBe(1);
    expect(await countRows("api_keys", "org_id = ?", body.org_id)).toBe(2);
  });

  it("a 5xx is retried (same key); a POST without an Idempotency-Key and a 4xx are never retried", async () => {
    let calls = 0;
    const unavailable = async (request: Request) => (++calls <= 2 ? new Response("busy", { status: 503 }) : worker(request));
    const operator = createAuthorityClient({ baseUrl: BASE, apiKey: MASTER.ORG_CREATE, fetch: unavailable, retryDelayMs: 1 });
    const { response } = await operator.POST("/v1/admin/org/create", { body: newOrg() });
    expect([calls, response.status]).toEqual([3, 201]);

    const seen: string[] = [];
    const failing = async (request: Request) => (
      seen.push(`${request.method} ${request.headers.get("idempotency-key") ?? "-"}`), new Response("down", { status: 503 })
    );
    const org = createAuthorityClient({ baseUrl: BASE, apiKey: "sk_live_x", fetch: failing, retryDelayMs: 1 });
    expect((await org.POST("/v1/admin/key/revoke", { body: {} })).response.status).toBe(503);
    expect(seen).toEqual(["POST -"]); // revoke takes no key: sent once

    const unauthorized = createAuthorityClient({ baseUrl: BASE, apiKey: "wrong", fetch: worker });
    const refused = await unauthorized.POST("/v1/admin/org/{org_id}/suspend", {
      params: { path: { org_id: "org_nobody_here" } },
      body: { confirm_org_id: "org_nobody_here" },
    });
    expect(refused.response.status).toBe(401);
    expect(refused.error).toMatchObject({ error: "UNAUTHORIZED" });
  });

  it("a partner provisions and rotates through it; the operator reads usage", async () => {
    const admin = createAuthorityClient({ baseUrl: BASE, apiKey: MASTER.PARTNER_ADMIN, fetch: worker });
    const partner = (await admin.POST("/v1/admin/partners", { body: { name: "Client Partner" } })).data!;
    const p = createAuthorityClient({ baseUrl: BASE, partnerKey: partner.partner_key, fetch: worker });
    const externalId = uniq("ext");
    const created = await p.POST("/api/v1/partner/organizations", { body: { externalId, email: `${externalId}@example.com`, businessName: "Client Co" } });
    expect(created.response.status).toBe(201);
    const rotated = await p.POST("/api/v1/partner/organizations/{identifier}/rotate-keys", {
      params: { path: { identifier: created.data!.organizationIdentifier } },
      body: { expire_previous_in_seconds: 60 },
    });
    expect(rotated.data?.serverKey).toMatch(/^sk_live_/);
    const usage = createAuthorityClient({ baseUrl: BASE, apiKey: SCOPE_KEYS.ORG_USAGE_READ, fetch: worker });
    const page = await usage.GET("/v1/admin/org/usage", { params: { query: { limit: 5 } } });
    expect(page.response.status).toBe(200);
    expect(Array.isArray(page.data?.results)).toBe(true);
  });
});
