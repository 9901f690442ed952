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
import { insertOrg, upsertOwner } from "./queries";
import { masterIdempotencyEndpoint, viaBillingBinding } from "../../lib/auth/master-key";
import { ulid } from "../../lib/util/ids";
import { enqueueOutbox } from "../onboarding/outbox-queue";
import { insertWelcomeEmail } from "../partner-orgs/queries";
import { deliverEventsAfterResponse, eventStatement, keysCreatedEvents } from "../../lib/data/events";
import type { orgCreateRoute } from "./route";

const ENDPOINT = "POST /v1/admin/org/create";

export const orgCreateHandler: RouteHandler<typeof orgCreateRoute, AppEnv> = async (c) => {
  const body = c.req.valid("json");
  const idempotencyKey = c.req.valid("header")["Idempotency-Key"];
  // Claim-to-mint: an org the payment worker provisions gets its owner and no keys; the owner mints them in the
  // console, so no key ever travels by email and the payment worker never holds one.
  const claim = viaBillingBinding(c);
  if (claim && !body.owner_email) {
    throw new ApiError(422, "VALIDATION_FAILED", "The request is not valid.", [
      { location: "body", field: "owner_email", message: "Required: the org's owner claims its keys in the console." },
    ]);
  }
  const pepper = await currentPepper(c.env); // 500 SERVER_MISCONFIGURED before anything is written
  const db = c.env.DB;

  // Every org has a client key (publishable; `api_key`, as the operator API has always named it) and a server key (administers the org).
  const keys = claim ? null : { client: mintKey("ck_live"), server: mintKey("sk_live") };
  const [clientHash, serverHash] = keys ? await Promise.all([pepper.hash(keys.client.plaintext), pepper.hash(keys.server.plaintext)]) : [];
  const now = isoNow();
  const requestId = c.get("requestId");
  const outboxId = body.owner_email ? ulid() : null;
  const stored = { org_id: body.org_id, prefix: keys?.client.prefix ?? null, server_prefix: keys?.server.prefix ?? null, created_at: now };
  const { owner_email: ownerEmail, ...org } = body;

  const statements = [
    ...(ownerEmail ? [upsertOwner(db, ownerEmail, now)] : []),
    // An operator org's slug is its org_id: unique, and never equal to a partner slug (those have no "_").
    insertOrg(db, { ...org, identifier: crypto.randomUUID(), slug: body.org_id, owner_email: ownerEmail }, now),
    ...(keys
      ? [insertOrgKey(db, body.org_id, keys.client, clientHash!, pepper.id, now), insertOrgKey(db, body.org_id, keys.server, serverHash!, pepper.id, now)]
      : []),
    eventStatement(db, "org.created", body.org_id, { tier: body.tier, keys: keys ? "minted" : "claim_in_console" }, now),
    ...(keys ? [keysCreatedEvents(db, body.org_id, now)] : []),
    auditStatement(
      db,
      {
        event_type: "ORG_CREATED",
        actor: "master:ORG_CREATE",
        org_id: body.org_id,
        key_prefix: keys ? KEY_TYPES.ck_live + keys.client.prefix : null,
        request_id: requestId,
        detail: `tier=${body.tier} domain=${body.domain}${keys ? ` server_key=${KEY_TYPES.sk_live}${keys.server.prefix}` : " keys=claim_in_console"}${ownerEmail ? " owner=set" : ""}`,
      },
      now,
    ),
    ...(ownerEmail && outboxId ? [insertWelcomeEmail(db, outboxId, body.org_id, ownerEmail, now)] : []),
  ];

  let outcome: Awaited<ReturnType<typeof runIdempotentBatch>>;
  try {
    outcome = await runIdempotentBatch(
      c,
      statements,
      {
        endpoint: masterIdempotencyEndpoint(c, ENDPOINT),
        key: idempotencyKey,
        fingerprint: await fingerprint(body),
        result: { status: 201, body: stored },
        minted: keys ? [keys.client.plaintext, keys.server.plaintext] : [],
      },
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
  deliverEventsAfterResponse(c);
  // Committed: hand the welcome email to the queue (the cron re-enqueues it if this is lost).
  if (outboxId) c.executionCtx.waitUntil(enqueueOutbox(c.env.OUTBOX_QUEUE, [outboxId]));
  const minted = keys ? { api_key: keys.client.plaintext, server_api_key: keys.server.plaintext, warning: KEY_SHOWN_ONCE_WARNING } : {};
  return c.json({ ...stored, ...minted, ...envelope(c) }, 201);
};
