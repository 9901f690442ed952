// POST /org-create and POST /provision: the service's batches for those routes, built from the service's own
// statement builders, with nothing else (no Hono, no zod, no credentials, no rate limits, no idempotency replay
// logic; the idempotency row itself is written, as the service writes it). It does the same work after the batch:
// provisioning enqueues the welcome email, and this worker's own queue consumer sends it with the service's outbox
// code (so the email's cost is on both sides of the ratio, on the same two cores).
import { insertOrg } from "../../src/features/admin-org-create/queries";
import { insertOrgKey } from "../../src/features/orgs/queries";
import * as q from "../../src/features/partner-orgs/queries";
import { baseSlug } from "../../src/features/partner-orgs/slug";
import { auditStatement } from "../../src/lib/data/audit";
import { eventStatement, keysCreatedEvents } from "../../src/lib/data/events";
import { randomCrockford, ulid } from "../../src/lib/util/ids";
import { consumeOutbox, type OutboxMessage } from "../../src/features/onboarding/outbox";
import { enqueueOutbox } from "../../src/features/onboarding/outbox-queue";
import { countStatement } from "../../src/features/partner-orgs/quota";

interface Env {
  DB: D1Database;
  PEPPER: string;
  OUTBOX_QUEUE: Queue<OutboxMessage>;
  EMAIL: SendEmail;
  EMAIL_FROM: string;
  PUBLIC_BASE_URL: string;
}

/** Inserted by bench/run.mjs before the run. */
const PARTNER = "ptn_BENCHBAREWRITES00000000000";
let hmacKey: Promise<CryptoKey> | undefined;
const hash = async (env: Env, text: string) => {
  hmacKey ??= crypto.subtle.importKey("raw", new TextEncoder().encode(env.PEPPER), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", await hmacKey, new TextEncoder().encode(text));
  return [...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, "0")).join("");
};
const mint = (type: "ck_live" | "sk_live") => {
  const body = randomCrockford(26);
  return { type, plaintext: `${type}_${body}`, prefix: body.slice(0, 8) };
};

export default {
  async queue(batch: MessageBatch<unknown>, env: Env) {
    await consumeOutbox(batch as MessageBatch<OutboxMessage>, env as never);
  },
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const url = new URL(request.url);
    if (request.method === "GET") return new Response("hello");
    const body = await request.json<Record<string, string>>();
    const db = env.DB;
    const now = new Date().toISOString();
    const client = mint("ck_live");
    const server = mint("sk_live");
    const [clientHash, serverHash] = await Promise.all([hash(env, client.plaintext), hash(env, server.plaintext)]);
    if (url.pathname === "/org-create") {
      const stored = JSON.stringify({ org_id: body.org_id, prefix: client.prefix, server_prefix: server.prefix, created_at: now });
      await db.batch([
        db
          .prepare(
            `INSERT INTO idempotency_keys (endpoint, idempotency_key, fingerprint, status_code, response, created_at, expires_at) VALUES (?, ?, ?, 201, ?, ?, ?)`,
          )
          .bind("POST /v1/admin/org/create", request.headers.get("idempotency-key"), "bench", stored, now, now),
        insertOrg(
          db,
          {
            org_id: body.org_id,
            identifier: crypto.randomUUID(),
            slug: body.org_id,
            name: body.name,
            domain: body.domain,
            tier: body.tier,
            allowed_origins: [body.allowed_origins],
          },
          now,
        ),
        insertOrgKey(db, body.org_id, client, clientHash, "bench", now),
        insertOrgKey(db, body.org_id, server, serverHash, "bench", now),
        eventStatement(db, "org.created", body.org_id, { tier: body.tier, keys: "minted" }, now),
        keysCreatedEvents(db, body.org_id, now),
        auditStatement(
          db,
          { event_type: "ORG_CREATED", actor: "master:ORG_CREATE", org_id: body.org_id, key_prefix: `ck_live_${client.prefix}`, request_id: `req_${ulid()}` },
          now,
        ),
      ]);
      return Response.json({ org_id: body.org_id, api_key: client.plaintext, server_api_key: server.plaintext }, { status: 201 });
    }
    const orgId = `org_${ulid().toLowerCase()}`;
    const org = {
      orgId,
      identifier: crypto.randomUUID(),
      baseSlug: baseSlug(body.businessName, body.email),
      name: body.businessName,
      partnerId: PARTNER,
      externalId: body.externalId,
    };
    const requestId = `req_${ulid()}`;
    const outboxId = ulid();
    await db.batch([
      countStatement(db, PARTNER, "welcome_emails", 1_000_000_000, Date.parse(now)),
      q.insertOwner(db, body.email, PARTNER, body.externalId, now),
      q.insertPartnerOrg(db, org, body.email, now),
      q.countPartnerOrg(db, PARTNER),
      insertOrgKey(db, orgId, client, clientHash, "bench", now),
      insertOrgKey(db, orgId, server, serverHash, "bench", now),
      eventStatement(db, "org.created", orgId, { external_id: body.externalId, keys: "minted" }, now),
      keysCreatedEvents(db, orgId, now),
      auditStatement(db, { event_type: "ORG_PROVISIONED", actor: `partner:${PARTNER}`, org_id: orgId, request_id: requestId }, now),
      auditStatement(db, { event_type: "USER_CREATED", actor: `partner:${PARTNER}`, org_id: orgId, request_id: requestId }, now),
      q.insertWelcomeEmail(db, outboxId, orgId, body.email, now),
      q.selectProvisioned(db, orgId),
    ]);
    ctx.waitUntil(enqueueOutbox(env.OUTBOX_QUEUE, [outboxId]));
    return Response.json({ organizationIdentifier: org.identifier, clientKey: client.plaintext, serverKey: server.plaintext }, { status: 201 });
  },
} satisfies ExportedHandler<Env>;
