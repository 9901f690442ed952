import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  type Action,
  ACTIONS,
  act,
  asOrg,
  callWithEnv,
  countingDb,
  countRows,
  dumpDatabase,
  liveKeys,
  makeOrg,
  MASTER,
  orgStatus,
  PLAINTEXT_KEY_PATTERN,
  SCOPE_KEYS,
  call,
  uniq,
} from "./helpers";

type State = "active" | "suspended" | "billing_suspended" | "revoked";

/** Brings a fresh org into `state` through the API. */
async function orgIn(state: State) {
  const org = await makeOrg();
  const via: Record<State, Action | null> = { active: null, suspended: "suspend", billing_suspended: "billing-suspend", revoked: "force-revoke" };
  const action = via[state];
  if (action) expect((await act(action, org.org_id)).status).toBe(200);
  expect(await orgStatus(org.org_id)).toBe(state);
  return org;
}

// The transition table of docs/api.md, as data: the resulting state, "noop", or 409.
const TABLE: Record<Action, Record<State, State | "noop" | 409>> = {
  "billing-suspend": { active: "billing_suspended", suspended: "billing_suspended", billing_suspended: "noop", revoked: 409 },
  // Billing rotate restores a billing-suspended org only: it never lifts an ops suspension, and from active there
  // is nothing to restore (so of concurrent rotates one mints and the others get 409).
  "billing-rotate": { active: 409, suspended: 409, billing_suspended: "active", revoked: 409 },
  suspend: { active: "suspended", suspended: "noop", billing_suspended: 409, revoked: 409 },
  reactivate: { active: "noop", suspended: "active", billing_suspended: 409, revoked: 409 },
  "force-rotate": { active: "active", suspended: "suspended", billing_suspended: 409, revoked: 409 },
  "force-revoke": { active: "revoked", suspended: "revoked", billing_suspended: "revoked", revoked: "noop" },
};

describe("state transitions", () => {
  for (const [action, row] of Object.entries(TABLE) as [Action, Record<State, State | "noop" | 409>][]) {
    for (const [from, outcome] of Object.entries(row) as [State, State | "noop" | 409][]) {
      it(`${action} from ${from}: ${outcome === 409 ? "409 ORG_STATE_CONFLICT" : outcome === "noop" ? "no-op 200" : `→ ${outcome}`}`, async () => {
        const org = await orgIn(from);
        const keysBefore = await liveKeys(org.org_id);
        const auditBefore = await countRows("audit_log", "org_id = ?", org.org_id);
        const idem = uniq();
        const res = await act(action, org.org_id, { idem });
        const json = await res.json<any>();
        if (outcome === 409) {
          expect(res.status).toBe(409);
          expect(json.error).toBe("ORG_STATE_CONFLICT");
          expect(await orgStatus(org.org_id)).toBe(from);
          expect(await liveKeys(org.org_id)).toBe(keysBefore);
          expect(await countRows("audit_log", "org_id = ?", org.org_id)).toBe(auditBefore);
          // The refusal is the key's result: recorded, and replayed as is (docs/contract.md).
          expect(await countRows("idempotency_keys", "idempotency_key = ? AND status_code = 409", idem)).toBe(1);
          return;
        }
        expect(res.status).toBe(200);
        expect(json.org_id).toBe(org.org_id);
        expect(json.request_id).toMatch(/^req_/);
        if (outcome === "noop") {
          expect(await orgStatus(org.org_id)).toBe(from);
          expect(await liveKeys(org.org_id)).toBe(keysBefore);
          expect(await countRows("audit_log", "org_id = ?", org.org_id)).toBe(auditBefore);
          return;
        }
        expect(await orgStatus(org.org_id)).toBe(outcome);
        expect(await countRows("audit_log", "org_id = ?", org.org_id)).toBe(auditBefore + 1);
        const oldKeyWorks = (await asOrg(org.server_api_key, "/v1/admin/audit-log")).status === 200;
        if (action === "billing-rotate" || action === "force-rotate") {
          expect(json).toMatchObject({ rotated: true, warning: expect.stringContaining("ONCE") });
          expect(json.new_api_key).toMatch(/^ck_live_[0-9A-HJKMNP-TV-Z]{8}_[0-9A-HJKMNP-TV-Z]{31}$/);
          expect(json.prefix).toBe(json.new_api_key.slice(8, 16));
          expect(json.new_server_api_key).toMatch(/^sk_live_[0-9A-HJKMNP-TV-Z]{8}_[0-9A-HJKMNP-TV-Z]{31}$/);
          expect(json.server_prefix).toBe(json.new_server_api_key.slice(8, 16));
          expect(await liveKeys(org.org_id)).toBe(2);
          expect(oldKeyWorks).toBe(false);
          expect((await asOrg(org.api_key, "/v1/admin/audit-log")).status).toBe(401);
          expect((await asOrg(json.new_server_api_key, "/v1/admin/audit-log")).status).toBe(outcome === "active" ? 200 : 401);
          const dump = await dumpDatabase();
          expect(dump).not.toContain(json.new_api_key);
          expect(dump).not.toContain(json.new_server_api_key);
        } else if (action === "suspend") {
          expect(json).toMatchObject({ suspended: true, suspended_at: expect.any(String) });
          expect(await liveKeys(org.org_id)).toBe(keysBefore); // kept
          expect(oldKeyWorks).toBe(false); // but refused while suspended
        } else if (action === "reactivate") {
          expect(json).toMatchObject({ reactivated: true, reactivated_at: expect.any(String) });
          expect(oldKeyWorks).toBe(true); // the same key works again
        } else if (action === "billing-suspend") {
          expect(json).toMatchObject({ suspended: true, note: expect.any(String), suspended_at: expect.any(String) });
          expect(await liveKeys(org.org_id)).toBe(0);
        } else if (action === "force-revoke") {
          expect(json).toMatchObject({ revoked: true, revoked_at: expect.any(String) });
          expect(await liveKeys(org.org_id)).toBe(0);
          expect(oldKeyWorks).toBe(false);
        }
      });
    }
  }

  it("billing-suspended keys stay revoked: reactivate is refused and billing rotate restores access with a new key", async () => {
    const org = await orgIn("billing_suspended");
    expect((await act("reactivate", org.org_id)).status).toBe(409);
    const rotated = await (await act("billing-rotate", org.org_id)).json<any>();
    expect(await orgStatus(org.org_id)).toBe("active");
    expect((await asOrg(org.server_api_key, "/v1/admin/audit-log")).status).toBe(401);
    expect((await asOrg(rotated.new_server_api_key, "/v1/admin/audit-log")).status).toBe(200);
  });

  it("billing rotate does not lift an ops suspension: 409, the org stays suspended with its keys", async () => {
    const org = await orgIn("suspended");
    const res = await act("billing-rotate", org.org_id);
    expect(res.status).toBe(409);
    expect((await res.json<any>()).error).toBe("ORG_STATE_CONFLICT");
    expect(await orgStatus(org.org_id)).toBe("suspended");
    expect(await liveKeys(org.org_id)).toBe(2);
  });

  it("concurrent billing rotates with different keys: one mints a live pair, the others get 409", async () => {
    const org = await orgIn("billing_suspended");
    const responses = await Promise.all(Array.from({ length: 8 }, () => act("billing-rotate", org.org_id)));
    const bodies = await Promise.all(responses.map((r) => r.json<any>()));
    expect(responses.map((r) => r.status).sort()).toEqual([200, 409, 409, 409, 409, 409, 409, 409]);
    const winner = bodies.find((b) => b.new_api_key)!;
    expect((await asOrg(winner.new_server_api_key, "/v1/admin/audit-log")).status).toBe(200);
    expect(await liveKeys(org.org_id)).toBe(2);
  });

  it("concurrent billing rotates with one key: one answer carries the keys, the others replay without them", async () => {
    const org = await orgIn("billing_suspended");
    const idem = uniq();
    const responses = await Promise.all(Array.from({ length: 8 }, () => act("billing-rotate", org.org_id, { idem })));
    const bodies = await Promise.all(responses.map((r) => r.json<any>()));
    expect(responses.every((r) => r.status === 200 || r.status === 409)).toBe(true);
    expect(bodies.filter((b) => b.new_api_key)).toHaveLength(1);
    expect(responses.filter((r) => r.status === 200 && r.headers.get("idempotent-replayed") !== "true")).toHaveLength(1);
    expect(await liveKeys(org.org_id)).toBe(2);
  });
});

describe("billing suspend", () => {
  it("repeat is a no-op 200 with the original time; audited once as ADMIN_BILLING_SUSPEND", async () => {
    const org = await makeOrg();
    const first = await (await act("billing-suspend", org.org_id)).json<any>();
    const again = await act("billing-suspend", org.org_id);
    expect(again.status).toBe(200);
    expect((await again.json<any>()).suspended_at).toBe(first.suspended_at);
    expect(await countRows("audit_log", "org_id = ? AND event_type = 'ADMIN_BILLING_SUSPEND'", org.org_id)).toBe(1);
    const audit = await env.DB.prepare("SELECT actor FROM audit_log WHERE org_id = ? AND event_type = 'ADMIN_BILLING_SUSPEND'").bind(org.org_id).first<any>();
    expect(audit.actor).toBe("master:BILLING_SUSPEND");
  });
});

describe("idempotency on operator POSTs", () => {
  it("a rotate replay returns the prefix without the key, and mints nothing", async () => {
    const org = await makeOrg();
    const idem = uniq();
    await act("billing-suspend", org.org_id);
    const first = await (await act("billing-rotate", org.org_id, { idem })).json<any>();
    const res = await act("billing-rotate", org.org_id, { idem });
    expect(res.status).toBe(200);
    expect(res.headers.get("idempotent-replayed")).toBe("true");
    const replay = await res.json<any>();
    expect(replay).toMatchObject({ rotated: true, org_id: org.org_id, prefix: first.prefix, server_prefix: first.server_prefix, rotated_at: first.rotated_at });
    expect(replay.new_api_key).toBeUndefined();
    expect(replay.new_server_api_key).toBeUndefined();
    expect(JSON.stringify(replay)).not.toMatch(PLAINTEXT_KEY_PATTERN);
    expect(await countRows("api_keys", "org_id = ?", org.org_id)).toBe(4);
  });

  it("a suspend replay returns the cached result even after the org changed", async () => {
    const org = await makeOrg();
    const idem = uniq();
    const first = await (await act("suspend", org.org_id, { idem })).json<any>();
    await act("reactivate", org.org_id);
    const replay = await act("suspend", org.org_id, { idem });
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect((await replay.json<any>()).suspended_at).toBe(first.suspended_at);
    expect(await orgStatus(org.org_id)).toBe("active");
  });

  it("the same key for another org is 422 IDEMPOTENCY_KEY_REUSED", async () => {
    const [a, b] = [await makeOrg(), await makeOrg()];
    const idem = uniq();
    expect((await act("suspend", a.org_id, { idem })).status).toBe(200);
    const res = await act("suspend", b.org_id, { idem });
    expect(res.status).toBe(422);
    expect((await res.json<any>()).error).toBe("IDEMPOTENCY_KEY_REUSED");
    expect(await orgStatus(b.org_id)).toBe("active");
  });

  it("concurrent force-rotates with different keys leave exactly one live key", async () => {
    const org = await makeOrg();
    const res = await Promise.all(Array.from({ length: 8 }, () => act("force-rotate", org.org_id)));
    expect(res.every((r) => r.status === 200)).toBe(true);
    expect(await liveKeys(org.org_id)).toBe(2);
  });
});

describe("request checks", () => {
  const actions = Object.keys(TABLE) as Action[];

  for (const action of actions) {
    it(`${action}: 401 for other scopes, 400 without Idempotency-Key, 422 malformed org_id, 404 unknown`, async () => {
      const org = await makeOrg();
      const a = ACTIONS[action];
      for (const key of [MASTER.ORG_CREATE, "wrong", ...Object.values(SCOPE_KEYS).filter((k) => k !== SCOPE_KEYS[a.scope])]) {
        const res = await act(action, org.org_id, { key });
        expect(res.status).toBe(401);
      }
      const audit = await env.DB.prepare("SELECT detail FROM audit_log WHERE event_type = 'AUTH_FAIL_MASTER_KEY' ORDER BY id DESC LIMIT 1").first<any>();
      expect(audit.detail).toContain(`scope=${a.scope}`);

      const noIdem = await call(a.path(org.org_id), {
        method: "POST",
        headers: { "x-api-key": SCOPE_KEYS[a.scope] },
        json: a.confirm ? { confirm_org_id: org.org_id } : undefined,
      });
      expect(noIdem.status).toBe(400);
      expect((await noIdem.json<any>()).error).toBe("VALIDATION_FAILED");

      const malformed = await act(action, "ORG-BAD", { body: a.confirm ? { confirm_org_id: "ORG-BAD" } : undefined });
      expect(malformed.status).toBe(422);
      expect((await malformed.json<any>()).details[0]).toMatchObject({ location: "path", field: "org_id" });

      const unknown = `org_unknown_${uniq().replace(/[^a-z0-9_]/g, "")}`;
      const idem = uniq();
      const notFound = await act(action, unknown, { idem });
      expect(notFound.status).toBe(404);
      expect((await notFound.json<any>()).error).toBe("NOT_FOUND");
      expect(await countRows("idempotency_keys", "idempotency_key = ? AND status_code = 404", idem)).toBe(1);
      expect(await orgStatus(org.org_id)).toBe("active");
    });
  }

  for (const action of ["suspend", "reactivate", "force-rotate", "force-revoke"] as Action[]) {
    it(`${action}: 422 when confirm_org_id differs or is missing, or a body idempotency_key differs from the header`, async () => {
      const org = await makeOrg();
      for (const body of [{ confirm_org_id: "org_someone_else" }, {}, { confirm_org_id: 7 }]) {
        const res = await act(action, org.org_id, { body });
        expect(res.status).toBe(422);
        expect((await res.json<any>()).details[0].field).toBe("confirm_org_id");
      }
      const idem = uniq();
      const mismatch = await act(action, org.org_id, { idem, body: { confirm_org_id: org.org_id, idempotency_key: "other" } });
      expect(mismatch.status).toBe(422);
      expect((await mismatch.json<any>()).details[0].field).toBe("idempotency_key");
      const match = await act(action, org.org_id, { idem, body: { confirm_org_id: org.org_id, idempotency_key: idem } });
      expect(match.status).toBe(200);
      const notJson = await call(`/v1/admin/org/${org.org_id}/suspend`, {
        method: "POST",
        headers: { "x-api-key": SCOPE_KEYS.ORG_SUSPEND, "idempotency-key": uniq(), "content-type": "text/plain" },
        body: "x",
      });
      expect(notJson.status).toBe(415);
    });
  }
});

describe("GET /v1/admin/org/{org_id}/usage", () => {
  it("counts the rolling 30 days against the tier limit; threshold_crossed at the limit", async () => {
    const org = await makeOrg({ tier: "starter" });
    const today = new Date().toISOString().slice(0, 10);
    const daysAgo = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString().slice(0, 10);
    await env.DB.batch([
      env.DB.prepare("INSERT INTO usage_daily (org_id, day, count) VALUES (?, ?, ?)").bind(org.org_id, today, 4000),
      env.DB.prepare("INSERT INTO usage_daily (org_id, day, count) VALUES (?, ?, ?)").bind(org.org_id, daysAgo(29), 1000),
      env.DB.prepare("INSERT INTO usage_daily (org_id, day, count) VALUES (?, ?, ?)").bind(org.org_id, daysAgo(30), 99999), // outside
    ]);
    const get = () => call(`/v1/admin/org/${org.org_id}/usage`, { headers: { "x-api-key": SCOPE_KEYS.ORG_USAGE_READ } });
    const res = await get();
    expect(res.status).toBe(200);
    const json = await res.json<any>();
    expect(json).toMatchObject({
      org_id: org.org_id,
      tier: "starter",
      active: true,
      interaction_count_current_period: 5000,
      tier_limit: 10000,
      utilization_ratio: 0.5,
      threshold_crossed: false,
    });
    expect(json.period_start).toBe(`${daysAgo(29)}T00:00:00.000Z`);
    expect(Date.parse(json.period_end)).toBeGreaterThanOrEqual(Date.parse(json.period_start));
    await env.DB.prepare("UPDATE usage_daily SET count = count + 5000 WHERE org_id = ? AND day = ?").bind(org.org_id, today).run();
    expect(await (await get()).json<any>()).toMatchObject({ interaction_count_current_period: 10000, threshold_crossed: true, utilization_ratio: 1 });
  });

  it("401 other scope, 404 unknown, 422 malformed", async () => {
    const org = await makeOrg();
    expect((await call(`/v1/admin/org/${org.org_id}/usage`, { headers: { "x-api-key": SCOPE_KEYS.ORG_SUSPEND } })).status).toBe(401);
    expect((await call(`/v1/admin/org/org_nobody_here/usage`, { headers: { "x-api-key": SCOPE_KEYS.ORG_USAGE_READ } })).status).toBe(404);
    expect((await call(`/v1/admin/org/nope/usage`, { headers: { "x-api-key": SCOPE_KEYS.ORG_USAGE_READ } })).status).toBe(422);
  });
});

describe("D1 round trips", () => {
  it("every operator POST is one batch; a replay is two round trips", async () => {
    for (const action of ["suspend", "reactivate", "force-rotate", "billing-suspend", "billing-rotate", "force-revoke"] as Action[]) {
      const org = await makeOrg();
      if (action === "reactivate") await act("suspend", org.org_id);
      if (action === "billing-rotate") await act("billing-suspend", org.org_id);
      const a = ACTIONS[action];
      const idem = uniq();
      const send = (db: D1Database) =>
        callWithEnv({ DB: db }, a.path(org.org_id), {
          method: "POST",
          headers: { "x-api-key": SCOPE_KEYS[a.scope], "idempotency-key": idem },
          json: a.confirm ? { confirm_org_id: org.org_id } : undefined,
        });
      const first = countingDb(env.DB);
      expect((await send(first.db)).status).toBe(200);
      expect(first.counter.roundTrips, action).toBe(1);
      const replay = countingDb(env.DB);
      expect((await send(replay.db)).headers.get("idempotent-replayed")).toBe("true");
      expect(replay.counter.roundTrips, action).toBe(2);
    }
  });
});

describe("GET /v1/admin/org/usage", () => {
  it("pages through active orgs only, with a threshold filter", async () => {
    const over = await makeOrg({ tier: "starter" });
    const under = await makeOrg({ tier: "starter" });
    const suspended = await makeOrg({ tier: "starter" });
    await act("suspend", suspended.org_id);
    const today = new Date().toISOString().slice(0, 10);
    await env.DB.batch([over, suspended].map((o) => env.DB.prepare("INSERT INTO usage_daily (org_id, day, count) VALUES (?, ?, 10000)").bind(o.org_id, today)));
    const seen: any[] = [];
    let cursor: string | null = null;
    do {
      const res = await call(`/v1/admin/org/usage?limit=7${cursor ? `&cursor=${cursor}` : ""}`, { headers: { "x-api-key": SCOPE_KEYS.ORG_USAGE_READ } });
      expect(res.status).toBe(200);
      const page = await res.json<any>();
      seen.push(...page.results);
      cursor = page.next;
    } while (cursor);
    const ids = seen.map((u) => u.org_id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toContain(over.org_id);
    expect(ids).toContain(under.org_id);
    expect(ids).not.toContain(suspended.org_id);
    expect(seen.find((u) => u.org_id === over.org_id)).toMatchObject({ status: "active", threshold_crossed: true });
    const crossed = await (
      await call(`/v1/admin/org/usage?threshold_crossed=true&limit=500`, { headers: { "x-api-key": SCOPE_KEYS.ORG_USAGE_READ } })
    ).json<any>();
    expect(crossed.results.map((u: any) => u.org_id)).toContain(over.org_id);
    expect(crossed.results.every((u: any) => u.threshold_crossed)).toBe(true);
    for (const qs of ["limit=0", "limit=501", "cursor=%%", "threshold_crossed=maybe"]) {
      expect((await call(`/v1/admin/org/usage?${qs}`, { headers: { "x-api-key": SCOPE_KEYS.ORG_USAGE_READ } })).status).toBe(422);
    }
    expect((await call(`/v1/admin/org/usage`, { headers: { "x-api-key": SCOPE_KEYS.ORG_SUSPEND } })).status).toBe(401);
  });
});
