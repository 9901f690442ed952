// Idempotency: one row per (endpoint, key), written in the same DB.batch() as the change it guards, so a row
// exists exactly when the change committed. A create is ONE round trip: the batch itself. A duplicate fails on
// the row's primary key (the first statement of the batch), which rolls the whole batch back; we then read the
// row and replay it (two round trips), or refuse a different body with 422.
import { type AppContext, envelope } from "./context";
import { uniqueViolation } from "./d1";
import { ApiError } from "./errors";
import { sha256Hex } from "./keys";
import { isoNow } from "./time";

export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

const PLAINTEXT_KEY = /(ck_live_|sk_live_|kvqp_)[0-9A-HJKMNP-TV-Z]{26}/;

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

export interface IdempotentWrite {
  endpoint: string;
  key: string;
  fingerprint: string;
  /** The changes to make; they commit together with the idempotency row or not at all. */
  statements: D1PreparedStatement[];
  status: number;
  /** The response to cache: no plaintext key may be in it (checked). */
  storedResponse: Record<string, unknown>;
}

interface IdempotencyRow {
  fingerprint: string;
  status_code: number;
  response: string;
}

/**
 * Runs the batch. Returns null when it committed (the caller answers with the fresh response), or the replay
 * response when this key was already used. Any other constraint error is rethrown for the caller to map.
 */
export async function commitIdempotent(
  c: AppContext,
  w: IdempotentWrite,
  replayExtras: Record<string, unknown> = {},
): Promise<Response | null> {
  const stored = JSON.stringify(w.storedResponse);
  if (PLAINTEXT_KEY.test(stored)) throw new Error("refusing to cache a response that holds a plaintext key");
  const db = c.env.DB;
  const now = Date.now();
  const insertRow = db
    .prepare(
      `INSERT INTO idempotency_keys (endpoint, idempotency_key, fingerprint, status_code, response, created_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    )
    .bind(w.endpoint, w.key, w.fingerprint, w.status, stored, isoNow(now), isoNow(now + IDEMPOTENCY_TTL_MS));
  try {
    await db.batch([insertRow, ...w.statements]);
    return null;
  } catch (err) {
    if (!uniqueViolation(err)?.startsWith("idempotency_keys.")) throw err;
  }
  const row = await db
    .prepare(`SELECT fingerprint, status_code, response FROM idempotency_keys WHERE endpoint = ? AND idempotency_key = ?`)
    .bind(w.endpoint, w.key)
    .first<IdempotencyRow>();
  if (!row) {
    // Only if the row expired and was swept between our two round trips.
    throw new ApiError(409, "IDEMPOTENCY_KEY_IN_USE", "This Idempotency-Key is being processed; retry.");
  }
  return replay(c, row, w.fingerprint, replayExtras);
}

function replay(c: AppContext, row: IdempotencyRow, fp: string, extras: Record<string, unknown>): Response {
  if (row.fingerprint !== fp) {
    throw new ApiError(
      422,
      "IDEMPOTENCY_KEY_REUSED",
      "This Idempotency-Key was already used with a different request body.",
    );
  }
  const body = { ...JSON.parse(row.response), ...extras, ...envelope(c) };
  return c.json(body, row.status_code as 200, { "Idempotent-Replayed": "true" });
}
