// Idempotency: one row per (endpoint, key), written in the same DB.batch() as the change it guards, so a row exists
// exactly when the change committed. The row's INSERT comes first in the batch and is unconditional: a key already
// used fails on the primary key, which rolls the whole batch back (nothing of the second request is written, and
// the first row is never touched). We then read the row and replay it (two round trips), or refuse a different
// request with 422. A first request is ONE round trip: the batch itself.
//
// A key's first result is final (docs/contract.md): the stored result is whatever the batch decided — a success, or a
// refusal such as 404 or 409 — and a replay returns it whatever happened to the target since.
import { type AppContext, envelope } from "../http/context";
import { uniqueViolation } from "./d1";
import { ApiError, type ErrorCode } from "../http/errors";
import { sha256Hex } from "../keys/keys";
import { isoNow } from "../util/time";

export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

/** SHA-256 of the validated body in canonical form (sorted keys), so formatting and key order do not matter. */
export function fingerprint(value: unknown): Promise<string> {
  return sha256Hex(JSON.stringify(canonical(value)));
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

/** A SQL expression (e.g. json_object(…) over rows the batch wrote) and its parameters. */
export interface SqlExpression {
  sql: string;
  binds: unknown[];
}

/** A response to store: its status and its body without any plaintext key. */
export interface StoredResult {
  status: number;
  body: Record<string, unknown>;
}

/**
 * A result only known once the batch's statements ran (a generated slug, "did this request change the org, or was
 * it refused?"): a SELECT that always yields exactly one row with the columns `status` (an HTTP status) and `body`
 * (JSON text), evaluated at the end of the same batch.
 */
export interface SqlResult {
  select: string;
  binds: unknown[];
}

/**
 * An error body as SQL (for SqlResult selects): `{error, message}` like errorResponse builds; the envelope is added
 * when it is answered. `messageSql` is a SQL expression: a quoted constant, or one that concatenates columns.
 */
export const sqlErrorBody = (code: ErrorCode, messageSql: string) => `json_object('error', '${code}', 'message', ${messageSql})`;

/** A constant message as a SQL string literal (messages are ours, never the caller's). */
export const sqlText = (s: string) => `'${s.replace(/'/g, "''")}'`;

/**
 * The result of a batch guarded by a mark (its first statement marks the org only when the action may apply, and
 * later statements test `mine`): `success` when this request holds the mark, else 409 ORG_STATE_CONFLICT with the
 * message `refusal` (SQL). Evaluated at the end of the same batch.
 */
export const outcomeUnderMark = (mine: SqlExpression, success: SqlExpression, refusal: SqlExpression): SqlResult => ({
  select: `SELECT CASE WHEN ${mine.sql} THEN 200 ELSE 409 END AS status,
      CASE WHEN ${mine.sql} THEN ${success.sql} ELSE ${sqlErrorBody("ORG_STATE_CONFLICT", refusal.sql)} END AS body`,
  binds: [...mine.binds, ...mine.binds, ...success.binds, ...refusal.binds],
});

export interface Idempotency {
  endpoint: string;
  key: string;
  /** What makes two requests "the same": the canonical body, and the target (path parameter) where there is one. */
  fingerprint: string;
  result: StoredResult | SqlResult;
  /** The plaintext keys this request minted: a stored result is checked not to hold any of them. */
  minted?: string[];
}

export type BatchOutcome = { replay: Response; results?: never; stored?: never } | { replay?: never; results: D1Result[]; stored: StoredResult | null };

const isSqlResult = (r: StoredResult | SqlResult): r is SqlResult => "select" in r;

/**
 * Runs `statements` as one batch, guarded by the idempotency row when there is one. Returns the statements'
 * results (the idempotency statements are not among them) and the result stored for the key, or the replay
 * response for a key already used. `replayExtras` are added to a replayed success body (the operator API's
 * request_id and timestamp, for instance); a replayed error always gets the envelope. Any other constraint error
 * is rethrown for the caller to map (and stores nothing: the batch rolled back).
 */
export async function runIdempotentBatch(
  c: AppContext,
  statements: D1PreparedStatement[],
  idem: Idempotency | undefined,
  replayExtras: Record<string, unknown> = {},
): Promise<BatchOutcome> {
  const db = c.env.DB;
  if (!idem) return { results: await db.batch(statements), stored: null };

  const fixed = isSqlResult(idem.result) ? null : idem.result;
  const stored = fixed ? JSON.stringify(fixed.body) : "";
  // A safety net for the code, not the caller: a name may look like a key, but no minted key may be cached.
  if (idem.minted?.some((k) => stored.includes(k))) throw new Error("refusing to cache a response that holds a plaintext key");
  const now = Date.now();
  const batch = [
    db
      .prepare(
        `INSERT INTO idempotency_keys (endpoint, idempotency_key, fingerprint, status_code, response, created_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .bind(idem.endpoint, idem.key, idem.fingerprint, fixed?.status ?? 0, stored, isoNow(now), isoNow(now + IDEMPOTENCY_TTL_MS)),
    ...statements,
  ];
  if (!fixed) {
    const { select, binds } = idem.result as SqlResult;
    // The row was inserted by this batch (a duplicate would have failed above), so this only ever fills our own row.
    batch.push(
      db
        .prepare(
          `UPDATE idempotency_keys SET (status_code, response) = (SELECT status, body FROM (${select}))
            WHERE endpoint = ? AND idempotency_key = ? RETURNING status_code, response`,
        )
        .bind(...binds, idem.endpoint, idem.key),
    );
  }
  let results: D1Result[];
  try {
    results = await db.batch(batch);
  } catch (err) {
    if (!uniqueViolation(err)?.startsWith("idempotency_keys.")) throw err;
    return { replay: await replay(c, idem, replayExtras) };
  }
  const filled = fixed ? null : (results.at(-1)!.results[0] as { status_code: number; response: string });
  return {
    results: results.slice(1, 1 + statements.length),
    stored: fixed ?? { status: filled!.status_code, body: JSON.parse(filled!.response) as Record<string, unknown> },
  };
}

/** A batch with no idempotency row whose answer is still decided in SQL at its end (as a SqlResult). */
export async function runWithOutcome(db: D1Database, statements: D1PreparedStatement[], result: SqlResult): Promise<BatchOutcome> {
  const results = await db.batch([...statements, db.prepare(result.select).bind(...result.binds)]);
  const row = results.at(-1)!.results[0] as { status: number; body: string };
  return { results: results.slice(0, -1), stored: { status: row.status, body: JSON.parse(row.body) as Record<string, unknown> } };
}

async function replay(c: AppContext, idem: Pick<Idempotency, "endpoint" | "key" | "fingerprint">, replayExtras: Record<string, unknown>): Promise<Response> {
  const found = await storedReplay(c, idem, replayExtras);
  // Only if the row expired and was swept between our two round trips.
  if (!found) throw new ApiError(409, "IDEMPOTENCY_KEY_IN_USE", "This Idempotency-Key is being processed; retry.");
  return found;
}

/**
 * The replay of a stored result for (endpoint, key), or null when there is none: 422 when the request differs
 * from the one stored. One read.
 */
export async function storedReplay(
  c: AppContext,
  idem: Pick<Idempotency, "endpoint" | "key" | "fingerprint">,
  replayExtras: Record<string, unknown> = {},
): Promise<Response | null> {
  const row = await c.env.DB.prepare(`SELECT fingerprint, status_code, response FROM idempotency_keys WHERE endpoint = ? AND idempotency_key = ?`)
    .bind(idem.endpoint, idem.key)
    .first<{ fingerprint: string; status_code: number; response: string }>();
  if (!row) return null;
  if (row.fingerprint !== idem.fingerprint) {
    throw new ApiError(422, "IDEMPOTENCY_KEY_REUSED", "This Idempotency-Key was already used with a different request or target.");
  }
  const extras = row.status_code >= 400 ? envelope(c) : replayExtras;
  const body = { ...(JSON.parse(row.response) as Record<string, unknown>), ...extras };
  return c.json(body, row.status_code as 200, { "Idempotent-Replayed": "true" });
}

/** The answer for a stored result: the body as stored, plus `extras` (the envelope, or the plaintext keys). */
export const answer = (c: AppContext, stored: StoredResult, extras: Record<string, unknown>) =>
  c.json({ ...stored.body, ...(stored.status >= 400 ? envelope(c) : extras) }, stored.status as 200);
