import type { RouteHandler } from "@hono/zod-openapi";
import { type AppEnv, envelope } from "../../lib/http/context";
import { ApiError, unauthorized } from "../../lib/http/errors";
import { currentPepper, type KeyType, mintKey } from "../../lib/keys/keys";
import { answer, fingerprint, runIdempotentBatch, runWithOutcome, storedReplay } from "../../lib/data/idempotency";
import type { RetiredKeyReplay } from "../../lib/auth/org-key-auth";
import { isoNow } from "../../lib/util/time";
import { forgetOrg } from "../../verify/verify-key";
import { KEY_SHOWN_ONCE_WARNING } from "../orgs/model";
import { orgChangedBy } from "../orgs/queries";
import { keyStatus } from "../../lib/keys/rotation";
import { callerOutcome, listOrgKeys, markIfCallerControls } from "./queries";
import type { auditLogRoute, listKeysRoute, revokeOwnKeyRoute, rotateOwnKeyRoute } from "./route";

import { type OrgKeyType, revokeStatements, rotateStatements } from "./actions";
import { deliverEventsAfterResponse } from "../../lib/data/events";

/** Self-serve rotations are idempotent per calling key: the same Idempotency-Key from another key is another request. */
const rotateEndpoint = (keyId: number) => `POST /v1/admin/key/rotate key=${keyId}`;
const rotateFingerprint = (callerType: KeyType, body: { key_type?: unknown; expire_previous_in_seconds?: unknown }) =>
  fingerprint({ key_type: body.key_type ?? callerType, expire_previous_in_seconds: body.expire_previous_in_seconds ?? 0 });

/**
 * A rotation retried with its Idempotency-Key after its response was lost finds its key retired by that rotation
 * (revoked, or in its window): it still gets the stored first answer (prefixes only), not a 401 or a 403.
 */
export const replayOwnRotation: RetiredKeyReplay = async (c, key) => {
  const idempotencyKey = c.req.header("idempotency-key");
  if (!idempotencyKey || idempotencyKey.length > 256) return null;
  let body: unknown;
  try {
    const text = await c.req.text();
    body = text.trim() ? JSON.parse(text) : {};
  } catch {
    return null;
  }
  if (!body || typeof body !== "object" || Array.isArray(body)) return null;
  return storedReplay(c, { endpoint: rotateEndpoint(key.key_id), key: idempotencyKey, fingerprint: await rotateFingerprint(key.key_type, body) }, envelope(c));
};

export const rotateOwnKey: RouteHandler<typeof rotateOwnKeyRoute, AppEnv> = async (c) => {
  const me = c.get("org");
  const body = c.req.valid("json") ?? {};
  const idempotencyKey = c.req.valid("header")["Idempotency-Key"];
  const keyType: OrgKeyType = body.key_type ?? (me.key_type as OrgKeyType);
  const window = body.expire_previous_in_seconds ?? 0;
  const pepper = await currentPepper(c.env);
  const db = c.env.DB;
  const nowMs = Date.now();
  const now = isoNow(nowMs);
  const requestId = c.get("requestId");
  const key = mintKey(keyType);
  const mine = orgChangedBy(me.org_id, requestId);
  const action = { db, orgId: me.org_id, requestId, actor: `org:${me.org_id}`, nowMs, mine };
  const statements = [
    // Of concurrent rotations with one key exactly one mints: the others find their key retired.
    markIfCallerControls(db, me.org_id, me.key_id, requestId),
    ...rotateStatements(action, keyType, window, key, await pepper.hash(key.plaintext), pepper.id, `by=${me.key_prefix}`),
  ];
  const stored = { rotated: true as const, org_id: me.org_id, key_type: keyType, prefix: key.prefix, rotated_at: now };
  const result = callerOutcome(mine, me.key_id, { sql: "json(?)", binds: [JSON.stringify(stored)] });
  const outcome = idempotencyKey
    ? await runIdempotentBatch(
        c,
        statements,
        { endpoint: rotateEndpoint(me.key_id), key: idempotencyKey, fingerprint: await rotateFingerprint(me.key_type, body), result, minted: [key.plaintext] },
        envelope(c),
      )
    : await runWithOutcome(db, statements, result);
  if (outcome.replay) return outcome.replay as never;
  forgetOrg(me.org_id);
  deliverEventsAfterResponse(c);
  return answer(c, outcome.stored!, { new_api_key: key.plaintext, warning: KEY_SHOWN_ONCE_WARNING, ...envelope(c) }) as never;
};

export const revokeOwnKey: RouteHandler<typeof revokeOwnKeyRoute, AppEnv> = async (c) => {
  const me = c.get("org");
  const keyType: OrgKeyType = c.req.valid("json").key_type ?? (me.key_type as OrgKeyType);
  const db = c.env.DB;
  const nowMs = Date.now();
  const now = isoNow(nowMs);
  const requestId = c.get("requestId");
  const mine = orgChangedBy(me.org_id, requestId);
  const [marked, revoked] = await db.batch<{ prefix: string }>([
    markIfCallerControls(db, me.org_id, me.key_id, requestId),
    ...revokeStatements({ db, orgId: me.org_id, requestId, actor: `org:${me.org_id}`, nowMs, mine }, keyType),
  ]);
  forgetOrg(me.org_id);
  deliverEventsAfterResponse(c);
  if (marked.meta.changes !== 1) throw unauthorized(); // the calling key was revoked concurrently
  const prefix = revoked.results.at(-1)?.prefix;
  if (!prefix) throw new ApiError(404, "NOT_FOUND", `The organization has no live ${keyType} key.`);
  return c.json({ revoked: true as const, org_id: me.org_id, key_type: keyType, prefix, revoked_at: now, ...envelope(c) }, 200);
};

export const auditLog: RouteHandler<typeof auditLogRoute, AppEnv> = async (c) => {
  const { event_type: eventType, since, until, limit } = c.req.valid("query");
  const where = ["org_id = ?"];
  const binds: unknown[] = [c.get("org").org_id];
  if (eventType) where.push("event_type = ?"), binds.push(eventType);
  if (since) where.push("created_at >= ?"), binds.push(since);
  if (until) where.push("created_at < ?"), binds.push(until);
  const { results } = await c.env.DB.prepare(
    `SELECT id, event_type, actor, key_prefix, request_id, detail, count, created_at FROM audit_log
      WHERE ${where.join(" AND ")} ORDER BY created_at DESC, id DESC LIMIT ?`,
  )
    .bind(...binds, limit)
    .all<{
      id: number;
      event_type: string;
      actor: string;
      key_prefix: string | null;
      request_id: string;
      detail: string | null;
      count: number;
      created_at: string;
    }>();
  return c.json({ results, count: results.length, ...envelope(c) }, 200);
};

export const listKeys: RouteHandler<typeof listKeysRoute, AppEnv> = async (c) => {
  const now = isoNow();
  const { results } = await listOrgKeys(c.env.DB, c.get("org").org_id, c.req.valid("query").limit);
  const keys = results.map((k) => ({ ...k, status: keyStatus(k, now) }));
  return c.json({ results: keys, count: keys.length, ...envelope(c) }, 200);
};
