// The changes an org's owner makes to its keys: rotate (with a window), revoke, and create the first pair (claim).
// One set of statements for both ways in: the self-serve API (the caller is a server key) and the console (the
// caller is the owner, signed in). Each batch starts with a mark that says who may act (markIfCallerControls or
// markIfOwnerControls); every statement here applies only under that mark (`mine`), and writes its audit rows.
import { auditRevokedKeysStatement, auditStatement } from "../../lib/data/audit";
import { keyRotatedEvents, keysCreatedEvents, keysRevokedEvents } from "../../lib/data/events";
import { isoNow } from "../../lib/util/time";
import type { SqlExpression } from "../../lib/data/idempotency";
import { KEY_TYPES, type MintedKey } from "../../lib/keys/keys";
import { retireKeys } from "../../lib/keys/rotation";
import { insertOrgKey } from "../orgs/queries";
import { revokeKeysOfType } from "./queries";

export type OrgKeyType = "ck_live" | "sk_live";

/** Who acts, on which org, in which request: the audit rows' actor ("org:…" for a key, "user:…" for an owner). */
export interface KeyAction {
  db: D1Database;
  orgId: string;
  requestId: string;
  actor: string;
  nowMs: number;
  /** Only under this condition (the batch's mark). */
  mine: SqlExpression;
}

const at = (a: KeyAction) => new Date(a.nowMs).toISOString();

/** A new key of `keyType`; the live ones of that type retire now (window 0) or at the window's end. */
export function rotateStatements(a: KeyAction, keyType: OrgKeyType, window: number, key: MintedKey, hash: string, pepperId: string, detail: string) {
  const now = at(a);
  return [
    ...retireKeys(a.db, { org_id: a.orgId, key_type: keyType }, a.nowMs, window, a.mine),
    insertOrgKey(a.db, a.orgId, key, hash, pepperId, now, a.mine),
    ...keyRotatedEvents(a.db, a.orgId, keyType, key.prefix, now, window ? isoNow(a.nowMs + window * 1000) : null, a.mine),
    auditStatement(
      a.db,
      {
        event_type: "KEY_ROTATED",
        actor: a.actor,
        org_id: a.orgId,
        key_prefix: KEY_TYPES[keyType] + key.prefix,
        request_id: a.requestId,
        detail: `${detail}${window ? ` expire_previous_in_seconds=${window}` : ""}`,
      },
      now,
      a.mine,
    ),
    auditRevokedKeysStatement(a.db, { actor: a.actor, org_id: a.orgId, request_id: a.requestId, detail: "rotated" }, keyType, now, a.mine),
  ];
}

/** Revokes every live key of `keyType` (one in a window too); the revoke statement RETURNs their prefixes. */
export function revokeStatements(a: KeyAction, keyType: OrgKeyType) {
  const now = at(a);
  return [
    revokeKeysOfType(a.db, a.orgId, keyType, now, a.mine),
    auditRevokedKeysStatement(a.db, { actor: a.actor, org_id: a.orgId, request_id: a.requestId }, keyType, now, a.mine),
    keysRevokedEvents(a.db, a.orgId, now, "revoked", a.mine, keyType),
  ];
}

/** The first pair of an org created without keys (claim-to-mint), or a new pair after billing restored it. */
export function claimStatements(a: KeyAction, client: MintedKey, server: MintedKey, hashes: [string, string], pepperId: string) {
  const now = at(a);
  return [
    insertOrgKey(a.db, a.orgId, client, hashes[0], pepperId, now, a.mine),
    insertOrgKey(a.db, a.orgId, server, hashes[1], pepperId, now, a.mine),
    keysCreatedEvents(a.db, a.orgId, now, a.mine),
    auditStatement(
      a.db,
      {
        event_type: "KEYS_CREATED",
        actor: a.actor,
        org_id: a.orgId,
        key_prefix: KEY_TYPES.ck_live + client.prefix,
        request_id: a.requestId,
        detail: `server_key=${KEY_TYPES.sk_live}${server.prefix}`,
      },
      now,
      a.mine,
    ),
  ];
}
