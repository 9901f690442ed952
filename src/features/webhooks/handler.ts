import type { Handler } from "hono";
import { DELIVERY_ID_SQL, deliverEventsAfterResponse, newEventId, noteEndpointCreated, TEST_EVENT_TYPE } from "../../lib/data/events";
import { answer, fingerprint, runIdempotentBatch, runWithOutcome, type SqlResult, sqlErrorBody } from "../../lib/data/idempotency";
import { type AppContext, type AppEnv, envelope } from "../../lib/http/context";
import { ApiError } from "../../lib/http/errors";
import { decodeCursor, encodeCursor } from "../../lib/http/paging";
import { ulid } from "../../lib/util/ids";
import { isoNow } from "../../lib/util/time";
import { MAX_ENDPOINTS_PER_OWNER, type OwnerType, SURFACES } from "./route";
import { currentSecretKey, encryptSecret, newSigningSecret } from "./secrets";

/** After a rotation the old secret signs too, this long. */
export const SECRET_OVERLAP_MS = 24 * 60 * 60 * 1000;

interface Owner {
  type: OwnerType;
  id: string;
}

const ownerOf = (c: AppContext, type: OwnerType): Owner => ({ type, id: type === "partner" ? c.get("partner").partner_id : c.get("org").org_id });

const ENDPOINT_COLUMNS = `id, url, event_types, status, status_reason, previous_secret_expires_at, created_at, updated_at`;
/** An endpoint row as the API shows it, built in SQL (for answers decided at the end of a batch). */
const endpointJson = (e: string) => `json_object('id', ${e}.id, 'url', ${e}.url, 'event_types', json(${e}.event_types), 'status', ${e}.status,
  'status_reason', ${e}.status_reason, 'previous_secret_expires_at', ${e}.previous_secret_expires_at, 'created_at', ${e}.created_at, 'updated_at', ${e}.updated_at)`;

interface EndpointRow {
  id: string;
  url: string;
  event_types: string | null;
  status: string;
  status_reason: string | null;
  previous_secret_expires_at: string | null;
  created_at: string;
  updated_at: string;
}

const toEndpoint = (r: EndpointRow, now = isoNow()) => ({
  ...r,
  event_types: r.event_types === null ? null : (JSON.parse(r.event_types) as string[]),
  // An overlap that ended is no longer an overlap.
  previous_secret_expires_at: r.previous_secret_expires_at && r.previous_secret_expires_at > now ? r.previous_secret_expires_at : null,
});

const notFound = () => new ApiError(404, "NOT_FOUND", "No such webhook endpoint.");
const disabled = () =>
  new ApiError(409, "WEBHOOK_ENDPOINT_DISABLED", "This endpoint answered 410 Gone and is disabled; create a new one to receive events again.");
const invalidUrl = (status: 400 | 422, message: string) =>
  new ApiError(status, "VALIDATION_FAILED", "The request is not valid.", [{ location: "body", field: "url", message }]);

/** A run on this machine (PUBLIC_BASE_URL is localhost): it may deliver to http://localhost and http://127.0.0.1. */
const isLocalRun = (env: { PUBLIC_BASE_URL?: string }) => /^http:\/\/(localhost|127\.0\.0\.1)(:\d+)?\/?$/.test(env.PUBLIC_BASE_URL?.trim() ?? "");

const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1"]);

/**
 * Where events may go: an https URL with a public host name (no IP literal, no localhost or internal name, no
 * credentials). A local run also accepts http://localhost and http://127.0.0.1, and nothing else over http.
 */
export function urlProblem(raw: string, local: boolean): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "Must be an absolute URL.";
  }
  if (url.username || url.password) return "Must not carry credentials.";
  if (url.hash) return "Must not have a fragment.";
  const host = url.hostname.toLowerCase();
  if (local && LOCAL_HOSTS.has(host) && (url.protocol === "http:" || url.protocol === "https:")) return null;
  if (url.protocol !== "https:") return local ? "Must be https (or, in a local run, http://localhost or http://127.0.0.1)." : "Must be an https URL.";
  if (/^[\d.]+$/.test(host) || host.includes(":") || host.startsWith("[")) return "Must use a host name, not an IP address.";
  if (!host.includes(".") || host === "localhost" || /\.(localhost|local|internal|home\.arpa)$/.test(host)) return "Must be a public host name.";
  return null;
}

async function findEndpoint(c: AppContext, owner: Owner, id: string): Promise<EndpointRow> {
  const row = await c.env.DB.prepare(`SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = ? AND owner_type = ? AND owner_id = ?`)
    .bind(id, owner.type, owner.id)
    .first<EndpointRow>();
  if (!row) throw notFound();
  return row;
}

const param = <T>(c: AppContext) => (c.req.valid as (t: "param") => T)("param");

export function webhookHandlers(type: OwnerType) {
  const validation = SURFACES[type].validation;

  const create: Handler<AppEnv> = async (c) => {
    const owner = ownerOf(c, type);
    const body = (c.req.valid as (t: "json") => { url: string; event_types?: string[] | null })("json");
    const idempotencyKey = (c.req.valid as (t: "header") => { "Idempotency-Key"?: string })("header")["Idempotency-Key"];
    const problem = urlProblem(body.url, isLocalRun(c.env));
    if (problem) throw invalidUrl(validation, problem);
    const key = await currentSecretKey(c.env); // 500 before anything is written
    const db = c.env.DB;
    const id = `whep_${ulid()}`;
    const now = isoNow();
    const { secret, bytes } = newSigningSecret();
    const sealed = await encryptSecret(key, id, bytes);
    const eventTypes = body.event_types ? JSON.stringify(body.event_types) : null;
    const statements = [
      db
        .prepare(
          `INSERT INTO webhook_endpoints (id, owner_type, owner_id, url, event_types, secret_ciphertext, secret_key_id, created_at, updated_at)
           SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?
            WHERE (SELECT COUNT(*) FROM webhook_endpoints WHERE owner_type = ? AND owner_id = ?) < ${MAX_ENDPOINTS_PER_OWNER}`,
        )
        .bind(id, owner.type, owner.id, new URL(body.url).href, eventTypes, sealed.ciphertext, sealed.keyId, now, now, owner.type, owner.id),
    ];
    // 201 with the endpoint when this batch inserted it, else 409 (the owner's limit was reached), decided in the batch.
    const result: SqlResult = {
      select: `SELECT CASE WHEN e.id IS NULL THEN 409 ELSE 201 END AS status,
                      CASE WHEN e.id IS NULL THEN ${sqlErrorBody("WEBHOOK_ENDPOINT_LIMIT", `'You already have ${MAX_ENDPOINTS_PER_OWNER} webhook endpoints; delete one first.'`)}
                           ELSE ${endpointJson("e")} END AS body
                 FROM (SELECT 1) LEFT JOIN webhook_endpoints e ON e.id = ?`,
      binds: [id],
    };
    const outcome = idempotencyKey
      ? await runIdempotentBatch(
          c,
          statements,
          { endpoint: `POST webhook-endpoints ${owner.type}=${owner.id}`, key: idempotencyKey, fingerprint: await fingerprint(body), result, minted: [secret] },
          envelope(c),
        )
      : await runWithOutcome(db, statements, result);
    if (outcome.replay) return outcome.replay;
    if (outcome.stored!.status === 201) noteEndpointCreated();
    return answer(c, outcome.stored!, { secret, ...envelope(c) });
  };

  const list: Handler<AppEnv> = async (c) => {
    const owner = ownerOf(c, type);
    const { results } = await c.env.DB.prepare(
      `SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE owner_type = ? AND owner_id = ? ORDER BY created_at, id`,
    )
      .bind(owner.type, owner.id)
      .all<EndpointRow>();
    const now = isoNow();
    return c.json({ results: results.map((r) => toEndpoint(r, now)), count: results.length, ...envelope(c) }, 200);
  };

  const get: Handler<AppEnv> = async (c) => {
    const row = await findEndpoint(c, ownerOf(c, type), param<{ endpoint_id: string }>(c).endpoint_id);
    return c.json({ ...toEndpoint(row), ...envelope(c) }, 200);
  };

  const remove: Handler<AppEnv> = async (c) => {
    const owner = ownerOf(c, type);
    const { endpoint_id: id } = param<{ endpoint_id: string }>(c);
    const db = c.env.DB;
    const [deleted] = await db.batch([
      db.prepare(`DELETE FROM webhook_endpoints WHERE id = ? AND owner_type = ? AND owner_id = ?`).bind(id, owner.type, owner.id),
      db.prepare(`DELETE FROM webhook_deliveries WHERE endpoint_id = ? AND changes() = 1`).bind(id),
      db.prepare(`DELETE FROM webhook_attempts WHERE endpoint_id = ? AND NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = ?)`).bind(id, id),
    ]);
    if (deleted.meta.changes !== 1) throw notFound();
    return c.json({ deleted: true as const, id, ...envelope(c) }, 200);
  };

  const rotateSecret: Handler<AppEnv> = async (c) => {
    const owner = ownerOf(c, type);
    const { endpoint_id: id } = param<{ endpoint_id: string }>(c);
    const key = await currentSecretKey(c.env);
    const { secret, bytes } = newSigningSecret();
    const sealed = await encryptSecret(key, id, bytes);
    const nowMs = Date.now();
    const now = isoNow(nowMs);
    // The current secret becomes the previous one (a previous one still in its overlap is replaced at once).
    const row = await c.env.DB.prepare(
      `UPDATE webhook_endpoints
          SET previous_secret_ciphertext = secret_ciphertext, previous_secret_key_id = secret_key_id, previous_secret_expires_at = ?,
              secret_ciphertext = ?, secret_key_id = ?, updated_at = ?
        WHERE id = ? AND owner_type = ? AND owner_id = ?
        RETURNING ${ENDPOINT_COLUMNS}`,
    )
      .bind(isoNow(nowMs + SECRET_OVERLAP_MS), sealed.ciphertext, sealed.keyId, now, id, owner.type, owner.id)
      .first<EndpointRow>();
    if (!row) throw notFound();
    return c.json({ ...toEndpoint(row), secret, ...envelope(c) }, 200);
  };

  const test: Handler<AppEnv> = async (c) => {
    const owner = ownerOf(c, type);
    const { endpoint_id: id } = param<{ endpoint_id: string }>(c);
    const db = c.env.DB;
    const now = isoNow();
    const eventId = newEventId();
    const [inserted, , endpoint] = await db.batch<{ status: string }>([
      db
        .prepare(
          `INSERT INTO webhook_events (id, type, org_id, partner_id, data, created_at)
           SELECT ?, ?, ?, ?, json_object('endpoint_id', w.id, 'message', 'A test event: your endpoint receives and verifies our events.'), ?
             FROM webhook_endpoints w WHERE w.id = ? AND w.owner_type = ? AND w.owner_id = ? AND w.status != 'disabled'`,
        )
        .bind(eventId, TEST_EVENT_TYPE, owner.type === "org" ? owner.id : null, owner.type === "partner" ? owner.id : null, now, id, owner.type, owner.id),
      // The fan-out trigger skips test events: this one goes to this endpoint only.
      db
        .prepare(
          `INSERT INTO webhook_deliveries (id, event_id, endpoint_id, next_attempt_at, created_at, updated_at)
           SELECT ${DELIVERY_ID_SQL}, ?, ?, ?, ?, ? WHERE changes() = 1`,
        )
        .bind(eventId, id, now, now, now),
      db.prepare(`SELECT status FROM webhook_endpoints WHERE id = ? AND owner_type = ? AND owner_id = ?`).bind(id, owner.type, owner.id),
    ]);
    if (inserted.meta.changes !== 1) {
      if (endpoint.results[0]) throw disabled();
      throw notFound();
    }
    deliverEventsAfterResponse(c);
    return c.json({ event_id: eventId, type: TEST_EVENT_TYPE, status: "pending" as const, ...envelope(c) }, 202);
  };

  const attempts: Handler<AppEnv> = async (c) => {
    const owner = ownerOf(c, type);
    const { endpoint_id: id } = param<{ endpoint_id: string }>(c);
    const q = (c.req.valid as (t: "query") => { limit: number; cursor?: string })("query");
    const before = q.cursor ? decodeCursor("a1", q.cursor, validation) : Number.MAX_SAFE_INTEGER;
    const db = c.env.DB;
    const [endpoint, page] = await db.batch<Record<string, unknown>>([
      db.prepare(`SELECT id FROM webhook_endpoints WHERE id = ? AND owner_type = ? AND owner_id = ?`).bind(id, owner.type, owner.id),
      db
        .prepare(
          `SELECT a.id, a.event_id, e.type AS event_type, a.attempt, a.status_code, a.error, a.duration_ms, a.created_at AS attempted_at,
                  a.next_attempt_at, d.status AS delivery_status
             FROM webhook_attempts a JOIN webhook_events e ON e.id = a.event_id JOIN webhook_deliveries d ON d.id = a.delivery_id
            WHERE a.endpoint_id = ? AND a.id < ? AND EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.id = a.endpoint_id AND w.owner_type = ? AND w.owner_id = ?)
            ORDER BY a.id DESC LIMIT ?`,
        )
        .bind(id, before, owner.type, owner.id, q.limit + 1),
    ]);
    if (!endpoint.results[0]) throw notFound();
    const rows = page.results.slice(0, q.limit);
    const next = page.results.length > q.limit ? encodeCursor("a1", rows[rows.length - 1].id as number) : null;
    return c.json({ results: rows, next, ...envelope(c) }, 200);
  };

  const replay: Handler<AppEnv> = async (c) => {
    const owner = ownerOf(c, type);
    const { endpoint_id: id, event_id: eventId } = param<{ endpoint_id: string; event_id: string }>(c);
    const db = c.env.DB;
    const now = isoNow();
    const [, found] = await db.batch<{ endpoint_status: string }>([
      db
        .prepare(
          `UPDATE webhook_deliveries SET status = 'pending', step = 0, next_attempt_at = ?, updated_at = ?
            WHERE event_id = ? AND endpoint_id = ? AND status != 'delivering'
              AND EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.id = ? AND w.owner_type = ? AND w.owner_id = ? AND w.status != 'disabled')`,
        )
        .bind(now, now, eventId, id, id, owner.type, owner.id),
      db
        .prepare(
          `SELECT w.status AS endpoint_status FROM webhook_endpoints w JOIN webhook_deliveries d ON d.endpoint_id = w.id
            WHERE w.id = ? AND w.owner_type = ? AND w.owner_id = ? AND d.event_id = ?`,
        )
        .bind(id, owner.type, owner.id, eventId),
    ]);
    const row = found.results[0];
    if (!row) throw new ApiError(404, "NOT_FOUND", "No such endpoint, or this event was never sent to it.");
    if (row.endpoint_status === "disabled") throw disabled();
    deliverEventsAfterResponse(c);
    return c.json({ event_id: eventId, endpoint_id: id, status: "pending" as const, ...envelope(c) }, 202);
  };

  return { create, list, get, remove, rotateSecret, test, attempts, replay };
}
