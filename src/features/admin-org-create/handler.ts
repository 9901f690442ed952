import type { RouteHandler } from "@hono/zod-openapi";
import { auditStatement } from "../../lib/data/audit";
import type { AppEnv } from "../../lib/http/context";
import { envelope } from "../../lib/http/context";
import { uniqueViolation } from "../../lib/data/d1";
import { ApiError } from "../../lib/http/errors";
import { fingerprint, runIdempotentBatch } from "../../lib/data/idempotency";
import { currentPepper, KEY_TYPES, mintKey } from "../../lib/keys/keys";
import { isoNow } from "../../lib/util/time";
import { KEY_SHOWN_ONCE_WARNING } from "../orgs/model";
import { insertOrgKey } from "../orgs/queries";
import { insertOrg } from "./queries";
import { masterIdempotencyEndpoint } from "../../lib/auth/master-key";
import type { orgCreateRoute } from "./route";

const ENDPOINT = "POST /v1/admin/org/create";

export const orgCreateHandler: RouteHandler<typeof orgCreateRoute, AppEnv> = async (c) => {
  const body = c.req.valid("json");
  const idempotencyKey = c.req.valid("header")["Idempotency-Key"];
  const pepper = await currentPepper(c.env); // 500 SERVER_MISCONFIGURED before anything is written
  const db = c.env.DB;

  // Every org has a client key (publishable; `api_key`, as in the seed) and a server key (administers the org).
  const client = mintKey("ck_live");
  const server = mintKey("sk_live");
  const [clientHash, serverHash] = await Promise.all([pepper.hash(client.plaintext), pepper.hash(server.plaintext)]);
  const now = isoNow();
  const requestId = c.get("requestId");
  const stored = { org_id: body.org_id, prefix: client.prefix, server_prefix: server.prefix, created_at: now };

  let outcome;
  try {
    outcome = await runIdempotentBatch(
      c,
      [
        // An operator org's slug is its org_id: unique, and never equal to a partner slug (those have no "_").
        insertOrg(db, { ...body, identifier: crypto.randomUUID(), slug: body.org_id }, now),
        insertOrgKey(db, body.org_id, client, clientHash, pepper.id, now),
        insertOrgKey(db, body.org_id, server, serverHash, pepper.id, now),
        auditStatement(
          db,
          {
            event_type: "ORG_CREATED",
            actor: "master:ORG_CREATE",
            org_id: body.org_id,
            key_prefix: KEY_TYPES.ck_live + client.prefix,
            request_id: requestId,
            detail: `tier=${body.tier} domain=${body.domain} server_key=${KEY_TYPES.sk_live}${server.prefix}`,
          },
          now,
        ),
      ],
      { endpoint: masterIdempotencyEndpoint(c, ENDPOINT), key: idempotencyKey, fingerprint: await fingerprint(body), result: { status: 201, body: stored }, minted: [client.plaintext, server.plaintext] },
      { already_provisioned: true, ...envelope(c) },
    );
  } catch (err) {
    // slug = org_id here, so either unique index may be the one SQLite reports.
    const violated = uniqueViolation(err);
    if (violated === "organizations.org_id" || violated === "organizations.slug") {
      throw new ApiError(409, "ORG_EXISTS", `The organization ${body.org_id} already exists.`);
    }
    throw err;
  }
  if (outcome.replay) return outcome.replay as never;

  return c.json(
    { org_id: body.org_id, api_key: client.plaintext, prefix: client.prefix, server_api_key: server.plaintext, server_prefix: server.prefix, created_at: now, warning: KEY_SHOWN_ONCE_WARNING, ...envelope(c) },
    201,
  );
};
