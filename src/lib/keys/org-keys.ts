// Org keys (ck_live_, sk_live_): one lookup shared by the org self-serve routes and verifyKey.
import type { Bindings } from "../http/context";
import { hashBinds, type KeyHashes, keyHashes, rehashStatement } from "./key-lookup";
import type { KeyType } from "./keys";
import { keyRowFailure } from "./rotation";
import { isoNow } from "../util/time";

export type OrgStatus = "active" | "suspended" | "billing_suspended" | "revoked";

export interface OrgKeyRow {
  key_id: number;
  key_hash: string;
  key_type: KeyType;
  prefix: string;
  revoked_at: string | null;
  /** The end of a rotation's overlap window, or null. */
  expires_at: string | null;
  org_id: string;
  tier: string;
  status: OrgStatus;
  allowed_origins: string;
}

export type OrgKeyFailure = "unknown" | "revoked" | "org_inactive";

const SELECT_ORG_KEY = `SELECT k.id AS key_id, k.key_hash, k.key_type, k.prefix, k.revoked_at, k.expires_at,
       o.org_id, o.tier, o.status, o.allowed_origins
  FROM api_keys k JOIN organizations o ON o.org_id = k.org_id
 WHERE k.key_hash IN (?, ?) AND k.key_type IN ('ck_live', 'sk_live')`;

/**
 * The key's row by hash (current or previous pepper), with `extraColumns` evaluated alongside, in one query (on
 * `reader`: a D1 session for reads a replica may serve, else the database). A key found under the previous pepper is
 * re-hashed to the current one (via `defer`, off the response path).
 */
export async function lookupOrgKey<Extra extends object = object>(
  env: Bindings,
  plaintext: string,
  defer: (p: Promise<unknown>) => void,
  extra?: { sql: string; binds: unknown[] },
  reader: D1Database | D1DatabaseSession = env.DB,
): Promise<{ hashes: KeyHashes; row: (OrgKeyRow & Extra) | null }> {
  const hashes = await keyHashes(env, plaintext);
  const sql = extra ? SELECT_ORG_KEY.replace("o.allowed_origins", `o.allowed_origins, ${extra.sql}`) : SELECT_ORG_KEY;
  const row = await reader
    .prepare(sql)
    .bind(...(extra?.binds ?? []), ...hashBinds(hashes))
    .first<OrgKeyRow & Extra>();
  if (row && row.key_hash !== hashes.current) defer(rehashStatement(env.DB, row.key_id, hashes).run());
  return { hashes, row };
}

export function orgKeyFailure(row: OrgKeyRow | null, now = isoNow()): OrgKeyFailure | null {
  if (!row) return "unknown";
  if (keyRowFailure(row, now)) return "revoked";
  if (row.status !== "active") return "org_inactive";
  return null;
}
