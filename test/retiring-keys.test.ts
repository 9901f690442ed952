// A key in its overlap window grants use, not control (403 KEY_RETIRING on rotate and revoke), and self-serve
// rotate takes an optional Idempotency-Key whose replay reaches even the key that rotation retired.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { verifyKey } from "../src/verify/verify-key";
import { asOrg, call, countRows, dumpDatabase, makeOrg, PLAINTEXT_KEY_PATTERN, uniq } from "./helpers";

async function verify(key: string) {
  const ctx = createExecutionContext();
  const result = await verifyKey(env as never, ctx, key);
  await waitOnExecutionContext(ctx);
  return result;
}
const rotate = (key: string, json?: unknown, headers: Record<string, string> = {}) =>
  call("/v1/admin/key/rotate", { method: "POST", headers: { "x-api-key": key, ...headers }, json });
const revoke = (key: string, json?: unknown) => call("/v1/admin/key/revoke", { method: "POST", headers: { "x-api-key": key }, json });

describe("a key in its overlap window may use the API but not control the org's keys", () => {
  it("the old server key cannot rotate (any type, any window) or revoke: 403 KEY_RETIRING; the owner's new key keeps working", async () => {
    const org = await makeOrg();
    const owner = await (await rotate(org.server_api_key, { expire_previous_in_seconds: 3600 })).json<any>();
    expect(owner.new_api_key).toMatch(/^sk_live_/);

    for (const body of [{ expire_previous_in_seconds: 0 }, {}, { key_type: "ck_live" }, { key_type: "sk_live", expire_previous_in_seconds: 60 }]) {
      const res = await rotate(org.server_api_key, body);
      expect(res.status, JSON.stringify(body)).toBe(403);
      expect(await res.json<any>()).toMatchObject({ error: "KEY_RETIRING", request_id: expect.stringMatching(/^req_/) });
    }
    for (const body of [undefined, { key_type: "sk_live" }, { key_type: "ck_live" }]) {
      const res = await revoke(org.server_api_key, body);
      expect(res.status, JSON.stringify(body)).toBe(403);
      expect((await res.json<any>()).error).toBe("KEY_RETIRING");
    }
    // Nothing changed: the owner's key, the client key and the retiring key all still work.
    expect((await asOrg(owner.new_api_key, "/v1/admin/keys")).status).toBe(200);
    expect(await verify(org.api_key)).toMatchObject({ valid: true });
    expect(await countRows("api_keys", "org_id = ? AND revoked_at IS NULL", org.org_id)).toBe(3);
    // Use, not control: the retiring key still reads the inventory and the audit log until its window ends.
    expect((await asOrg(org.server_api_key, "/v1/admin/keys")).status).toBe(200);
    expect((await asOrg(org.server_api_key, "/v1/admin/audit-log")).status).toBe(200);
    // The owner's current key still controls: it may rotate again (ending the old key's window).
    expect((await rotate(owner.new_api_key, {})).status).toBe(200);
    expect((await asOrg(org.server_api_key, "/v1/admin/keys")).status).toBe(401);
  });

  it("a retiring client key verifies until its window ends; a retiring client key on rotate is still 403 KEY_TYPE_NOT_ALLOWED", async () => {
    const org = await makeOrg();
    expect((await rotate(org.server_api_key, { key_type: "ck_live", expire_previous_in_seconds: 600 })).status).toBe(200);
    expect(await verify(org.api_key)).toMatchObject({ valid: true });
    expect((await (await rotate(org.api_key, {})).json<any>()).error).toBe("KEY_TYPE_NOT_ALLOWED");
  });
});

describe("self-serve rotate with an Idempotency-Key", () => {
  it("a retry after a lost response (window 0) replays the prefix, with the key that rotation revoked; it mints once", async () => {
    const org = await makeOrg();
    const idem = uniq("rot");
    const first = await rotate(org.server_api_key, {}, { "idempotency-key": idem });
    expect(first.status).toBe(200);
    const minted = await first.json<any>();
    expect(minted.new_api_key).toMatch(/^sk_live_/);
    const again = await rotate(org.server_api_key, {}, { "idempotency-key": idem });
    expect(again.status).toBe(200);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    const replayed = await again.json<any>();
    expect(replayed).toMatchObject({ rotated: true, org_id: org.org_id, key_type: "sk_live", prefix: minted.prefix, rotated_at: minted.rotated_at });
    expect(replayed).not.toHaveProperty("new_api_key");
    expect(await countRows("api_keys", "org_id = ? AND key_type = 'sk_live'", org.org_id)).toBe(2);
    // Without the Idempotency-Key (or with another one) the revoked key is the uniform 401.
    expect((await rotate(org.server_api_key, {})).status).toBe(401);
    expect((await rotate(org.server_api_key, {}, { "idempotency-key": uniq("other") })).status).toBe(401);
    expect(await dumpDatabase()).not.toMatch(PLAINTEXT_KEY_PATTERN);
  });

  it("a retry with a window replays instead of 403; another body with the same key is 422; an empty key is 400", async () => {
    const org = await makeOrg();
    const idem = uniq("rot");
    const body = { expire_previous_in_seconds: 3600 };
    expect((await rotate(org.server_api_key, body, { "idempotency-key": idem })).status).toBe(200);
    const again = await rotate(org.server_api_key, body, { "idempotency-key": idem });
    expect(again.status).toBe(200);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    const other = await rotate(org.server_api_key, { expire_previous_in_seconds: 60 }, { "idempotency-key": idem });
    expect(other.status).toBe(422);
    expect((await other.json<any>()).error).toBe("IDEMPOTENCY_KEY_REUSED");
    const empty = await rotate(org.server_api_key, body, { "idempotency-key": "" });
    expect([400, 403]).toContain(empty.status); // the retiring key: refused either way, nothing minted
    expect(await countRows("api_keys", "org_id = ? AND key_type = 'sk_live'", org.org_id)).toBe(2);
  });

  it("concurrent duplicates mint exactly one key", async () => {
    const org = await makeOrg();
    const idem = uniq("rot");
    const answers = await Promise.all(Array.from({ length: 8 }, () => rotate(org.server_api_key, {}, { "idempotency-key": idem })));
    expect(answers.map((r) => r.status)).toEqual(Array(8).fill(200));
    expect(answers.filter((r) => r.headers.get("idempotent-replayed") !== "true")).toHaveLength(1);
    expect(await countRows("api_keys", "org_id = ? AND key_type = 'sk_live'", org.org_id)).toBe(2);
  });
});
