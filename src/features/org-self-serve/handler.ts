import type { RouteHandler } from "@hono/zod-openapi";
import { auditStatement } from "../../lib/audit";
import { type AppEnv, envelope } from "../../lib/context";
import { unauthorized } from "../../lib/errors";
import { currentPepper, KEY_TYPES, mintKey } from "../../lib/keys";
import { isoNow } from "../../lib/time";
import { forgetOrg } from "../../verify/verify-key";
import { KEY_SHOWN_ONCE_WARNING } from "../orgs/model";
import { insertOrgKey } from "../orgs/queries";
import type { auditLogRoute, revokeOwnKeyRoute, rotateOwnKeyRoute } from "./route";

const revokeKey = (db: D1Database, keyId: number, now: string) =>
  db.prepare(`UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`).bind(now, keyId);

export const rotateOwnKey: RouteHandler<typeof rotateOwnKeyRoute, AppEnv> = async (c) => {
  const me = c.get("org");
  const pepper = await currentPepper(c.env);
  const db = c.env.DB;
  const now = isoNow();
  const key = mintKey(me.key_type as "ck_live" | "sk_live");
  // The new key is inserted only if this request revoked the old one (changes() = 1): of concurrent rotations
  // with one key exactly one mints, so exactly one key stays live; the others find their key revoked (401).
  const [, minted] = await db.batch([
    revokeKey(db, me.key_id, now),
    insertOrgKey(db, me.org_id, key, await pepper.hash(key.plaintext), pepper.id, now, { sql: "changes() = 1", binds: [] }),
    auditStatement(
      db,
      { event_type: "KEY_ROTATED", actor: `org:${me.org_id}`, org_id: me.org_id, key_prefix: KEY_TYPES[key.type] + key.prefix, request_id: c.get("requestId"), detail: `old_key=${me.key_prefix}` },
      now,
      { sql: "changes() = 1", binds: [] },
    ),
  ]);
  forgetOrg(me.org_id);
  if (minted.meta.changes !== 1) throw unauthorized();
  return c.json(
    { rotated: true as const, org_id: me.org_id, key_type: key.type as "ck_live" | "sk_live", new_api_key: key.plaintext, prefix: key.prefix, rotated_at: now, warning: KEY_SHOWN_ONCE_WARNING, ...envelope(c) },
    200,
  );
};

export const revokeOwnKey: RouteHandler<typeof revokeOwnKeyRoute, AppEnv> = async (c) => {
  const me = c.get("org");
  const db = c.env.DB;
  const now = isoNow();
  const [revoked] = await db.batch([
    revokeKey(db, me.key_id, now),
    auditStatement(db, { event_type: "KEY_REVOKED", actor: `org:${me.org_id}`, org_id: me.org_id, key_prefix: me.key_prefix, request_id: c.get("requestId") }, now, { sql: "changes() = 1", binds: [] }),
  ]);
  forgetOrg(me.org_id);
  if (revoked.meta.changes !== 1) throw unauthorized(); // revoked concurrently
  return c.json({ revoked: true as const, org_id: me.org_id, prefix: me.key_prefix.slice(-8), revoked_at: now, ...envelope(c) }, 200);
};

export const auditLog: RouteHandler<typeof auditLogRoute, AppEnv> = async (c) => {
  const { event_type: eventType, since, until, limit } = c.req.valid("query");
  const where = ["org_id = ?"];
  const binds: unknown[] = [c.get("org").org_id];
  if (eventType) (where.push("event_type = ?"), binds.push(eventType));
  if (since) (where.push("created_at >= ?"), binds.push(since));
  if (until) (where.push("created_at < ?"), binds.push(until));
  const { results } = await c.env.DB.prepare(
    `SELECT id, event_type, actor, key_prefix, request_id, detail, created_at FROM audit_log
      WHERE ${where.join(" AND ")} ORDER BY created_at DESC, id DESC LIMIT ?`,
  )
    .bind(...binds, limit)
    .all<{ id: number; event_type: string; actor: string; key_prefix: string | null; request_id: string; detail: string | null; created_at: string }>();
  return c.json({ results, count: results.length, ...envelope(c) }, 200);
};
