// The BillingService entrypoint: the payment worker's RPC way in, with no master key. It runs the same routes as the
// HTTP API (same validation, batch, audit row and idempotency row), and only through a binding that names it.
import { env } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { BillingRpc } from "../src/billing/entrypoint";
import { act, call, countRows, orgBody, orgStatus, uniq } from "./helpers";

// Typed by its interface: the stub's inferred RPC type is too deep for tsc.
const billing = exports.BillingService as unknown as BillingRpc;

describe("BillingService over RPC", () => {
  it("createOrg: 201 with both keys once, the same audit and idempotency rows as POST /v1/admin/org/create; a replay has none", async () => {
    const body = orgBody();
    const eventId = uniq("evt");
    const first = await billing.createOrg(eventId, body);
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ org_id: body.org_id, api_key: expect.stringMatching(/^ck_live_/), server_api_key: expect.stringMatching(/^sk_live_/) });
    const audit = await env.DB.prepare("SELECT actor FROM audit_log WHERE org_id = ? AND event_type = 'ORG_CREATED'").bind(body.org_id).first<any>();
    expect(audit.actor).toBe("master:ORG_CREATE");
    expect(await countRows("idempotency_keys", "endpoint = 'binding POST /v1/admin/org/create' AND idempotency_key = ?", eventId)).toBe(1);
    const replay = await billing.createOrg(eventId, body);
    expect(replay).toMatchObject({ status: 201, body: { already_provisioned: true } });
    expect(replay.body.api_key).toBeUndefined();
  });

  it("binding calls have their own idempotency namespace: an operator's HTTPS key equal to a Stripe event id neither replays nor blocks it", async () => {
    const eventId = uniq("evt");
    // An operator (or someone who guessed an event id) uses the id first over HTTPS, for another org.
    const operatorOrg = orgBody();
    const http = await call("/v1/admin/org/create", { headers: { "x-api-key": env.MASTER_ADMIN_KEY_ORG_CREATE, "idempotency-key": eventId }, json: operatorOrg });
    expect(http.status).toBe(201);
    const body = orgBody();
    const viaBinding = await billing.createOrg(eventId, body);
    expect(viaBinding.status).toBe(201); // not 422 IDEMPOTENCY_KEY_REUSED: another namespace
    expect(viaBinding.body.already_provisioned).toBeUndefined();
    const suspendKey = uniq("evt");
    expect((await act("billing-suspend", operatorOrg.org_id, { idem: suspendKey })).status).toBe(200);
    expect((await billing.billingSuspend(suspendKey, body.org_id as string)).status).toBe(200);
    expect(await orgStatus(body.org_id as string)).toBe("billing_suspended");
  });

  it("validation and refusals come back as the HTTP statuses and bodies", async () => {
    expect(await billing.createOrg(uniq("evt"), { ...orgBody(), tier: "platinum" })).toMatchObject({ status: 422, body: { error: "VALIDATION_FAILED" } });
    expect(await billing.billingSuspend(uniq("evt"), "org_nobody_here")).toMatchObject({ status: 404, body: { error: "NOT_FOUND" } });
    expect(await billing.billingSuspend(uniq("evt"), "NOT AN ORG")).toMatchObject({ status: 422 });
  });

  it("billingSuspend, billingRotate and listUsage act as their routes do", async () => {
    const { body } = await billing.createOrg(uniq("evt"), orgBody());
    const orgId = body.org_id as string;
    expect((await billing.billingSuspend(uniq("evt"), orgId)).body).toMatchObject({ suspended: true, org_id: orgId });
    expect(await orgStatus(orgId)).toBe("billing_suspended");
    const rotated = await billing.billingRotate(uniq("evt"), orgId);
    expect(rotated.body).toMatchObject({ rotated: true, new_api_key: expect.stringMatching(/^ck_live_/), new_server_api_key: expect.stringMatching(/^sk_live_/) });
    expect(await orgStatus(orgId)).toBe("active");
    const one = await billing.listUsage({}, orgId);
    expect(one.body).toMatchObject({ org_id: orgId, status: "active", tier_limit: 10000 });
    const page = await billing.listUsage({ limit: 2 });
    expect(page.status).toBe(200);
    expect(page.body.results.length).toBeLessThanOrEqual(2);
  });

  it("is reachable only through a binding that names it: not over HTTP, not through another entrypoint", async () => {
    const verifier = exports.KeyVerifier as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    const refused = await verifier.createOrg(uniq("evt"), orgBody()).then(() => null, (err: Error) => err);
    expect(String(refused)).toMatch(/does not implement "createOrg"/);
    // Over HTTP the same routes still need their master key: no header, or another scope's key, is 401.
    const org = orgBody();
    expect((await call("/v1/admin/org/create", { headers: { "idempotency-key": uniq() }, json: org })).status).toBe(401);
    expect((await call("/v1/admin/org/create", { headers: { "x-api-key": env.MASTER_ADMIN_KEY_BILLING_SUSPEND, "idempotency-key": uniq() }, json: org })).status).toBe(401);
    // And the billing binding reaches no other scope: ops routes keep their master keys.
    expect((await act("force-revoke", org.org_id, { key: "nope" })).status).toBe(401);
  });
});
