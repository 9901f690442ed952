// A key's first result is final (docs/contract.md): same key + same request → the first response, whatever happened to
// the target since; same key + another target or body → 422; never a 500, never an overwrite of the stored row.
import { env } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Action, act, call, countRows, createPartner, makeOrg, MASTER, orgStatus, uniq } from "./helpers";

const storedRow = (endpointLike: string, key: string) =>
  env.DB.prepare("SELECT endpoint, fingerprint, status_code, response FROM idempotency_keys WHERE endpoint LIKE ? AND idempotency_key = ?")
    .bind(endpointLike, key)
    .first<{ endpoint: string; fingerprint: string; status_code: number; response: string }>();

const unknownOrg = () => `org_unknown_${uniq().replace(/[^a-z0-9_]/g, "")}`;

describe("a reused Idempotency-Key on another target never rewrites the first result", () => {
  for (const action of ["billing-suspend", "suspend", "reactivate", "force-revoke"] as Action[]) {
    it(`${action}: an unknown target is 422 (not a 500), and the first org's cached answer is untouched`, async () => {
      const org = await makeOrg();
      if (action === "reactivate") await act("suspend", org.org_id);
      const idem = uniq();
      const first = await act(action, org.org_id, { idem });
      expect(first.status).toBe(200);
      const before = await storedRow(`%${action.replace("billing-", "")}%`, idem);

      const other = await act(action, unknownOrg(), { idem });
      expect(other.status).toBe(422);
      expect((await other.json<any>()).error).toBe("IDEMPOTENCY_KEY_REUSED");
      expect(await storedRow(`%${action.replace("billing-", "")}%`, idem)).toEqual(before);

      const retry = await act(action, org.org_id, { idem });
      expect(retry.status).toBe(200);
      expect(retry.headers.get("idempotent-replayed")).toBe("true");
      expect((await retry.json<any>()).org_id).toBe(org.org_id);
    });
  }

  it("suspend: a target in a refusing state is 422, not 409, and the genuine retry still replays the first org", async () => {
    const [a, b] = [await makeOrg(), await makeOrg()];
    await act("force-revoke", b.org_id); // suspend is refused from revoked
    const idem = uniq();
    const first = await (await act("suspend", a.org_id, { idem })).json<any>();
    const reuse = await act("suspend", b.org_id, { idem });
    expect(reuse.status).toBe(422);
    const retry = await act("suspend", a.org_id, { idem });
    expect(retry.status).toBe(200);
    const replay = await retry.json<any>();
    expect(replay).toMatchObject({ suspended: true, org_id: a.org_id, suspended_at: first.suspended_at });
  });

  it("suspend with K, force-revoke, suspend with K again: the cached 200, not a 409", async () => {
    const org = await makeOrg();
    const idem = uniq();
    const first = await (await act("suspend", org.org_id, { idem })).json<any>();
    expect((await act("force-revoke", org.org_id)).status).toBe(200);
    const again = await act("suspend", org.org_id, { idem });
    expect(again.status).toBe(200);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(await again.json<any>()).toMatchObject({ suspended: true, org_id: org.org_id, suspended_at: first.suspended_at });
    expect(await orgStatus(org.org_id)).toBe("revoked");
  });

  it("a refusal is a result too: 409 with K, the org changes, K again replays the 409", async () => {
    const org = await makeOrg();
    await act("suspend", org.org_id);
    const idem = uniq();
    const refused = await act("billing-suspend", org.org_id, { idem: "warmup-" + idem }); // suspended → billing_suspended
    expect(refused.status).toBe(200);
    const first = await act("reactivate", org.org_id, { idem }); // reactivate from billing_suspended: 409
    expect(first.status).toBe(409);
    const firstBody = await first.json<any>();
    expect(firstBody.error).toBe("ORG_STATE_CONFLICT");
    await act("billing-rotate", org.org_id); // → active
    const again = await act("reactivate", org.org_id, { idem });
    expect(again.status).toBe(409);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect((await again.json<any>()).message).toBe(firstBody.message);
  });

  it("partner deactivate: another partner under the same key is 422, never a rewrite", async () => {
    const [p, q] = [await createPartner(), await createPartner()];
    const idem = uniq();
    const deactivate = (id: string) =>
      call(`/v1/admin/partners/${id}/deactivate`, { method: "POST", headers: { "x-api-key": MASTER.PARTNER_ADMIN, "idempotency-key": idem } });
    const first = await deactivate(p.partner_id);
    expect(first.status).toBe(200);
    const before = await storedRow("%deactivate%", idem);
    for (const target of [q.partner_id, "ptn_01NXSVCHPARTNER00000000000"]) {
      const res = await deactivate(target);
      expect(res.status, target).toBe(422);
      expect(await storedRow("%deactivate%", idem)).toEqual(before);
    }
    const stillActive = await env.DB.prepare("SELECT active FROM partners WHERE partner_id = ?").bind(q.partner_id).first<{ active: number }>();
    expect(stillActive!.active).toBe(1);
    const retry = await deactivate(p.partner_id);
    expect(retry.headers.get("idempotent-replayed")).toBe("true");
    expect((await retry.json<any>()).partner_id).toBe(p.partner_id);
  });
});

// Property: random sequences of (endpoint, key, target) — with state changes under fresh keys in between — behave
// like a table that remembers each key's first answer and never changes it.
describe("property: first answer is final, per (endpoint, key)", () => {
  type Endpoint = Action | "partner-deactivate";
  const ENDPOINTS: Endpoint[] = ["billing-suspend", "billing-rotate", "suspend", "reactivate", "force-rotate", "force-revoke", "partner-deactivate"];
  /** What a replay may differ in: the envelope, and the plaintext keys only the first answer carries. */
  const comparable = (body: Record<string, unknown>) => {
    const { request_id, timestamp, new_api_key, new_server_api_key, warning, ...rest } = body;
    return rest;
  };

  it("same key + same target → the first status and body; another target → 422; never a 5xx; rows never rewritten", { timeout: 240_000 }, async () => {
    let requests = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            endpoint: fc.constantFrom(...ENDPOINTS),
            key: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constant(-1)), // -1: a fresh key (a state change)
            target: fc.integer({ min: 0, max: 3 }), // 3: unknown
          }),
          { minLength: 4, maxLength: 24 },
        ),
        async (steps) => {
          const run = uniq("run");
          const orgs = [(await makeOrg()).org_id, (await makeOrg()).org_id, (await makeOrg()).org_id, unknownOrg()];
          const partners = [
            (await createPartner()).partner_id,
            (await createPartner()).partner_id,
            (await createPartner()).partner_id,
            "ptn_01NXSVCHPARTNER00000000000",
          ];
          const first = new Map<string, { target: number; status: number; body: Record<string, unknown> }>();
          for (const step of steps) {
            const key = step.key < 0 ? uniq("fresh") : `${run}-k${step.key}`;
            const res =
              step.endpoint === "partner-deactivate"
                ? await call(`/v1/admin/partners/${partners[step.target]}/deactivate`, {
                    method: "POST",
                    headers: { "x-api-key": MASTER.PARTNER_ADMIN, "idempotency-key": key },
                  })
                : await act(step.endpoint, orgs[step.target], { idem: key });
            requests++;
            const body = await res.json<Record<string, unknown>>();
            expect(res.status, JSON.stringify(body)).toBeLessThan(500);
            const seen = first.get(`${step.endpoint}|${key}`);
            if (!seen) {
              expect([200, 404, 409]).toContain(res.status);
              first.set(`${step.endpoint}|${key}`, { target: step.target, status: res.status, body: comparable(body) });
            } else if (seen.target === step.target) {
              expect(res.status).toBe(seen.status);
              expect(res.headers.get("idempotent-replayed")).toBe("true");
              expect(comparable(body)).toEqual(seen.body);
            } else {
              expect(res.status).toBe(422);
              expect(body.error).toBe("IDEMPOTENCY_KEY_REUSED");
            }
          }
          // The stored rows are exactly the first answers.
          for (const [k, seen] of first) {
            const [, key] = k.split("|");
            const rows = await env.DB.prepare("SELECT status_code, response FROM idempotency_keys WHERE idempotency_key = ?")
              .bind(key)
              .all<{ status_code: number; response: string }>();
            const matching = rows.results.filter(
              (r) => r.status_code === seen.status && JSON.stringify(comparable(JSON.parse(r.response))) === JSON.stringify(seen.body),
            );
            expect(matching.length, k).toBeGreaterThanOrEqual(1);
          }
        },
      ),
      { numRuns: 25, endOnFailure: true },
    );
    expect(requests).toBeGreaterThan(100);
    expect(await countRows("idempotency_keys", "status_code >= 500")).toBe(0);
  });
});
