// Storms: many identical requests at once. Exactly one key minted, distinct slugs for all, no 5xx, no plaintext.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { countRows, createOrg, createPartner, dumpDatabase, orgBody, PLAINTEXT_KEY_PATTERN, provision, provisionBody, uniq } from "./helpers";

describe("storms", () => {
  it("200 concurrent org creates with one Idempotency-Key: exactly one key pair minted, no 5xx", { timeout: 120_000 }, async () => {
    const body = orgBody();
    const key = uniq("storm");
    const responses = await Promise.all(Array.from({ length: 200 }, () => createOrg(body, key)));
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s >= 500)).toEqual([]);
    const bodies = await Promise.all(responses.map((r) => r.json<any>()));
    expect(bodies.filter((b) => b.api_key)).toHaveLength(1);
    expect(statuses.every((s) => s === 201)).toBe(true);
    expect(await countRows("api_keys", "org_id = ?", body.org_id)).toBe(2);
    expect(await countRows("audit_log", "org_id = ? AND event_type = 'ORG_CREATED'", body.org_id)).toBe(1);
    console.log(`org-create storm: ${statuses.length} responses, 1 minted, ${bodies.filter((b) => b.already_provisioned).length} replays`);
  });

  it("500 concurrent partner provisions with one businessName: 500 × 201 and 500 distinct slugs", { timeout: 120_000 }, async () => {
    const partner = await createPartner("Storm Partner");
    const name = `Storm Co ${uniq("n")}`;
    const responses = await Promise.all(Array.from({ length: 500 }, () => provision(partner.partner_key, provisionBody({ businessName: name }))));
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s >= 500)).toEqual([]);
    expect(statuses.every((s) => s === 201)).toBe(true);
    const bodies = await Promise.all(responses.map((r) => r.json<any>()));
    const slugs = new Set(bodies.map((b) => b.organizationSlug));
    expect(slugs.size).toBe(500);
    expect(await countRows("organizations", "partner_id = ?", partner.partner_id)).toBe(500);
    console.log(`provision storm: 500 × 201, ${slugs.size} distinct slugs`);

    const dump = await dumpDatabase();
    expect(dump).not.toMatch(PLAINTEXT_KEY_PATTERN);
    for (const b of bodies.slice(0, 50)) {
      expect(dump).not.toContain(b.clientKey);
      expect(dump).not.toContain(b.serverKey);
    }
    expect(dump).not.toContain(partner.partner_key);
    expect(dump).not.toContain(env.API_KEY_PEPPER);
  });
});
