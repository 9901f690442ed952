// Idempotency: one row per (endpoint, key), written in the same DB.batch() as the change it guards, so a row
// exists exactly when the change committed. A first request is ONE round trip: the batch itself, with the row's
// insert first. A duplicate fails on the row's primary key, which rolls its whole batch back; we then read the
// row and replay it (two round trips), or refuse a different body with 422.
import type { AppContext } from "./context";
import { uniqueViolation } from "./d1";
import { ApiError } from "./errors";
import { sha256Hex } from "./keys";
import { isoNow } from "./time";

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

export interface Idempotency {
  endpoint: string;
  key: string;
  fingerprint: string;
  status: number;
  /**
   * The response to cache, without any plaintext key (checked). A SqlExpression when parts of it are only known
   * once the batch ran (a generated slug, a user id): it is evaluated at the end of the same batch.
   */
  response: Record<string, unknown> | SqlExpression;
  /** Only record the key when this SQL condition holds (e.g. the target exists), so a 404 caches nothing. */
  guard?: SqlExpression;
  /** The plaintext keys this request minted: the cached response is checked not to hold any of them. */
  minted?: string[];
}

export type BatchOutcome = { replay: Response; results?: never } | { replay?: never; results: D1Result[] };

/**
 * Runs `statements` as one batch, guarded by the idempotency row when there is one. Returns the statements'
 * results (the idempotency statements are not among them), or the replay response for a key already used;
 * `replayExtras` are added to a replayed body (the operator API's request_id and timestamp, for instance).
 * Any other constraint error is rethrown for the caller to map.
 */
export async function runIdempotentBatch(
  c: AppContext,
  statements: D1PreparedStatement[],
  idem: Idempotency | undefined,
  replayExtras: Record<string, unknown> = {},
): Promise<BatchOutcome> {
  const db = c.env.DB;
  if (!idem) return { results: await db.batch(statements) };

  const isSqlResponse = "sql" in idem.response && typeof idem.response.sql === "string";
  const stored = isSqlResponse ? "" : JSON.stringify(idem.response);
  // A safety net for the code, not the caller: a name may look like a key, but no minted key may be cached.
  if (idem.minted?.some((k) => stored.includes(k))) throw new Error("refusing to cache a response that holds a plaintext key");
  const now = Date.now();
  const guard = idem.guard ?? { sql: "1", binds: [] };
  const insertRow = db
    .prepare(
      `INSERT INTO idempotency_keys (endpoint, idempotency_key, fingerprint, status_code, response, created_at, expires_at)
       SELECT ?, ?, ?, ?, ?, ?, ? WHERE ${guard.sql}`,
    )
    .bind(idem.endpoint, idem.key, idem.fingerprint, idem.status, stored, isoNow(now), isoNow(now + IDEMPOTENCY_TTL_MS), ...guard.binds);
  const batch = [insertRow, ...statements];
  if (isSqlResponse) {
    const expr = idem.response as SqlExpression;
    batch.push(
      db
        .prepare(`UPDATE idempotency_keys SET response = (${expr.sql}) WHERE endpoint = ? AND idempotency_key = ?`)
        .bind(...expr.binds, idem.endpoint, idem.key),
    );
  }
  try {
    const results = await db.batch(batch);
    return { results: results.slice(1, 1 + statements.length) };
  } catch (err) {
    if (!uniqueViolation(err)?.startsWith("idempotency_keys.")) throw err;
  }
  const row = await db
    .prepare(`SELECT fingerprint, status_code, response FROM idempotency_keys WHERE endpoint = ? AND idempotency_key = ?`)
    .bind(idem.endpoint, idem.key)
    .first<{ fingerprint: string; status_code: number; response: string }>();
  if (!row) {
    // Only if the row expired and was swept between our two round trips.
    throw new ApiError(409, "IDEMPOTENCY_KEY_IN_USE", "This Idempotency-Key is being processed; retry.");
  }
  if (row.fingerprint !== idem.fingerprint) {
    throw new ApiError(422, "IDEMPOTENCY_KEY_REUSED", "This Idempotency-Key was already used with a different request body.");
  }
  const body = { ...(JSON.parse(row.response) as Record<string, unknown>), ...replayExtras };
  return { replay: c.json(body, row.status_code as 200, { "Idempotent-Replayed": "true" }) };
}
