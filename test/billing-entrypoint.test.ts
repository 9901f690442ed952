// The BillingService entrypoint: the payment worker's RPC way in, with no master key. It runs the same routes as the
// HTTP API (same validation, batch, audit row and idempotency row), and only through a binding that names it.
import { env } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { BillingRpc } from "../src/billing/entrypoint";
import { KeyVerifier } from "../src/verify/entrypoint";
import { deliverAllOutbox, plainText, spyEmail, subjectOf } from "./email";
import { act, call, countRows, createPartner, orgBody, orgStatus, PLAINTEXT_KEY_PATTERN, provision, provisionBody, uniq } from "./helpers";
import { afterEach, vi } from "vitest";

afterEach(() => vi.restoreAllMocks());

// Typed by its interface: the stub's inferred RPC type is too deep for tsc.
const billing = exports.BillingService as unknown as BillingRpc;

describe("BillingService over RPC", () => {
  it("createOrg: 201 with the owner and NO keys (claim-to-mint), the same audit and idempotency rows as POST /v1/admin/org/create", async () => {
    const body = { ...orgBody(), owner_email: `${uniq("owner")}@example.com` };
    const eventId = uniq("evt");
    const first = await billing.createOrg(eventId, body);
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ org_id: body.org_id, prefix: null, server_prefix: null });
    expect(JSON.stringify(first.body)).not.toMatch(PLAINTEXT_KEY_PATTERN);
    expect(await countRows("api_keys", "org_id = ?", body.org_id)).toBe(0);
    const owner = await env.DB.prepare("SELECT u.email FROM organizations o JOIN users u ON u.id = o.owner_user_id WHERE o.org_id = ?")
      .bind(body.org_id)
      .first<any>();
    expect(owner.email).toBe(body.owner_email);
    expect(await countRows("outbox", "kind = 'welcome_email' AND json_extract(payload, '$.org_id') = ?", body.org_id)).toBe(1);
    const audit = await env.DB.prepare("SELECT actor, detail FROM audit_log WHERE org_id = ? AND event_type = 'ORG_CREATED'").bind(body.org_id).first<any>();
    expect(audit).toMatchObject({ actor: "master:ORG_CREATE", detail: expect.stringContaining("keys=claim_in_console") });
    expect(await countRows("idempotency_keys", "endpoint = 'binding POST /v1/admin/org/create' AND idempotency_key = ?", eventId)).toBe(1);
    const replay = await billing.createOrg(eventId, body);
    expect(replay).toMatchObject({ status: 201, body: { already_provisioned: true } });
    // Without an owner nobody could claim the keys: refused.
    expect(await billing.createOrg(uniq("evt"), orgBody())).toMatchObject({ status: 422, body: { details: [{ field: "owner_email" }] } });
  });

  it("an owner of several orgs: a second checkout with the same email reuses the account", async () => {
    const email = `${uniq("multi")}@example.com`;
    const a = await billing.createOrg(uniq("evt"), { ...orgBody(), owner_email: email });
    const b = await billing.createOrg(uniq("evt"), { ...orgBody(), owner_email: email.toUpperCase() });
    expect([a.status, b.status]).toEqual([201, 201]);
    const owners = await env.DB.prepare("SELECT COUNT(DISTINCT owner_user_id) AS n FROM organizations WHERE org_id IN (?, ?)")
      .bind(a.body.org_id, b.body.org_id)
      .first<any>();
    expect(owners.n).toBe(1);
  });

  it("billing says why: org.suspended and org.reactivated carry the reason the payment worker gives (billing, dispute, usage)", async () => {
    const reasons = async (orgId: string) =>
      (
        await env.DB.prepare(
          "SELECT type, json_extract(data, '$.reason') AS reason FROM webhook_events WHERE org_id = ? AND type LIKE 'org.%' ORDER BY created_at, rowid",
        )
          .bind(orgId)
          .all()
      ).results;
    const body = { ...orgBody(), owner_email: `${uniq("why")}@example.com` };
    await billing.createOrg(uniq("evt"), body);
    expect((await billing.billingSuspend(uniq("evt"), body.org_id, "usage")).status).toBe(200);
    expect((await billing.billingRotate(uniq("evt"), body.org_id)).status).toBe(200);
    expect((await billing.billingSuspend(uniq("evt"), body.org_id, "dispute")).status).toBe(200);
    expect((await billing.billingRotate(uniq("evt"), body.org_id, "dispute")).status).toBe(200);
    expect(await reasons(body.org_id)).toEqual([
      { type: "org.created", reason: null },
      { type: "org.suspended", reason: "usage" },
      { type: "org.reactivated", reason: "billing" },
      { type: "org.suspended", reason: "dispute" },
      { type: "org.reactivated", reason: "dispute" },
    ]);
    // The same Stripe event id with another reason is another request.
    const id = uniq("evt");
    expect((await billing.billingSuspend(id, body.org_id, "usage")).status).toBe(200);
    expect((await billing.billingSuspend(id, body.org_id, "dispute")).status).toBe(422);
  });

  it("no key in any email: a whole paid lifecycle through the binding, every email the runtime sent scanned", async () => {
    const { sent } = spyEmail();
    const body = { ...orgBody(), owner_email: `${uniq("scan")}@example.com` };
    const orgId = body.org_id;
    await billing.createOrg(uniq("evt"), body);
    expect((await billing.billingSuspend(uniq("evt"), orgId)).status).toBe(200);
    const restored = await billing.billingRotate(uniq("evt"), orgId);
    expect(restored).toMatchObject({ status: 200, body: { rotated: true, prefix: null, server_prefix: null } });
    expect(JSON.stringify(restored.body)).not.toMatch(PLAINTEXT_KEY_PATTERN);
    expect(await countRows("api_keys", "org_id = ? AND revoked_at IS NULL", orgId)).toBe(0); // old keys stay revoked
    // A partner's org and an operator's org with keys, for good measure: their keys went only to HTTPS responses.
    const partner = await createPartner();
    expect((await provision(partner.partner_key, provisionBody())).status).toBe(201);
    expect(
      (
        await call("/v1/admin/org/create", {
          headers: { "x-api-key": env.MASTER_ADMIN_KEY_ORG_CREATE, "idempotency-key": uniq() },
          json: { ...orgBody(), owner_email: `${uniq("op")}@example.com` },
        })
      ).status,
    ).toBe(201);
    expect(await deliverAllOutbox()).toBeGreaterThanOrEqual(4);
    const kinds = sent.map((m) => subjectOf(m));
    expect(kinds).toContain("Your access is restored");
    expect(sent.length).toBeGreaterThanOrEqual(4);
    for (const m of sent) {
      expect(JSON.stringify(m)).not.toMatch(/(ck_live_|sk_live_|kvqp_)/);
      expect(plainText(m)).not.toMatch(/(ck_live_|sk_live_|kvqp_)/);
    }
    const restoredMail = sent.find((m) => m.to === body.owner_email && subjectOf(m) === "Your access is restored")!;
    expect(plainText(restoredMail)).toMatch(/create new ones/);
  });

  it("validation and refusals come back as the HTTP statuses and bodies", async () => {
    expect(await billing.createOrg(uniq("evt"), { ...orgBody(), tier: "platinum" })).toMatchObject({ status: 422, body: { error: "VALIDATION_FAILED" } });
    expect(await billing.billingSuspend(uniq("evt"), "org_nobody_here")).toMatchObject({ status: 404, body: { error: "NOT_FOUND" } });
    expect(await billing.billingSuspend(uniq("evt"), "NOT AN ORG")).toMatchObject({ status: 422 });
  });

  it("billingSuspend, billingRotate and listUsage act as their routes do", async () => {
    const { body } = await billing.createOrg(uniq("evt"), { ...orgBody(), owner_email: `${uniq("o")}@example.com` });
    const orgId = body.org_id as string;
    expect((await billing.billingSuspend(uniq("evt"), orgId)).body).toMatchObject({ suspended: true, org_id: orgId });
    expect(await orgStatus(orgId)).toBe("billing_suspended");
    const rotated = await billing.billingRotate(uniq("evt"), orgId);
    expect(rotated.body).toMatchObject({ rotated: true, prefix: null, server_prefix: null });
    expect(rotated.body.new_api_key).toBeUndefined();
    // The same route over HTTPS with its master key still mints and returns the pair (the seeds' contract).
    expect((await act("billing-suspend", orgId)).status).toBe(200);
    const viaHttps = await (await act("billing-rotate", orgId)).json<any>();
    expect(viaHttps).toMatchObject({ new_api_key: expect.stringMatching(/^ck_live_/), new_server_api_key: expect.stringMatching(/^sk_live_/) });
    expect(await orgStatus(orgId)).toBe("active");
    const one = await billing.listUsage({}, orgId);
    expect(one.body).toMatchObject({ org_id: orgId, status: "active", tier_limit: 10000 });
    const page = await billing.listUsage({ limit: 2 });
    expect(page.status).toBe(200);
    expect(page.body.results.length).toBeLessThanOrEqual(2);
  });

  it("is reachable only through a binding that names it: not over HTTP, not through another entrypoint", async () => {
    // The sibling workers' entrypoint has no billing method for an RPC call to reach (calling one would only
    // make workerd log the refusal as an uncaught exception).
    const methods = Object.getOwnPropertyNames(KeyVerifier.prototype);
    expect(methods).toContain("verifyKey");
    for (const name of ["createOrg", "billingSuspend", "billingRotate", "listUsage"]) expect(methods).not.toContain(name);
    // Over HTTP the same routes still need their master key: no header, or another scope's key, is 401.
    const org = orgBody();
    expect((await call("/v1/admin/org/create", { headers: { "idempotency-key": uniq() }, json: org })).status).toBe(401);
    expect(
      (await call("/v1/admin/org/create", { headers: { "x-api-key": env.MASTER_ADMIN_KEY_BILLING_SUSPEND, "idempotency-key": uniq() }, json: org })).status,
    ).toBe(401);
    // And the billing binding reaches no other scope: ops routes keep their master keys.
    expect((await act("force-revoke", org.org_id, { key: "nope" })).status).toBe(401);
  });
});
