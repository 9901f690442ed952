// Minting and hashing of API keys. The plaintext exists only in the response that mints it; D1 holds the
// peppered HMAC-SHA256 of it, looked up through a unique index.
import { randomCrockford } from "../util/ids";
import { ApiError } from "../http/errors";

export const KEY_TYPES = {
  ck_live: "ck_live_", // org client key
  sk_live: "sk_live_", // org server key
  kvqp: "kvqp_", // partner key
} as const;
export type KeyType = keyof typeof KEY_TYPES;

const BODY_LENGTH = 26; // 130 random bits
const PREFIX_LENGTH = 8;

export interface MintedKey {
  type: KeyType;
  plaintext: string;
  /** The 8 characters after the type prefix: what responses, logs and audit rows show. */
  prefix: string;
}

export function mintKey(type: KeyType): MintedKey {
  const body = randomCrockford(BODY_LENGTH);
  return { type, plaintext: KEY_TYPES[type] + body, prefix: body.slice(0, PREFIX_LENGTH) };
}

const KEY_PATTERN = new RegExp(`^(ck_live_|sk_live_|kvqp_)[0-9A-HJKMNP-TV-Z]{${BODY_LENGTH}}$`);

/** The key's type if it is well-formed; malformed keys are refused before any lookup. */
export function parseKey(candidate: string): { type: KeyType; prefix: string } | null {
  const m = KEY_PATTERN.exec(candidate);
  if (!m) return null;
  const type = (Object.keys(KEY_TYPES) as KeyType[]).find((t) => KEY_TYPES[t] === m[1])!;
  return { type, prefix: candidate.slice(m[1].length, m[1].length + PREFIX_LENGTH) };
}

/** A peppered hasher; `id` names the pepper (a short HMAC of a constant) so rows record which one made them. */
export interface Pepper {
  id: string;
  hash(plaintext: string): Promise<string>;
}

const peppers = new Map<string, Promise<Pepper>>();
const encoder = new TextEncoder();

function toHex(buf: ArrayBuffer): string {
  return [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function loadPepper(secret: string): Promise<Pepper> {
  let p = peppers.get(secret);
  if (!p) {
    p = (async () => {
      const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
        "sign",
      ]);
      const hash = async (plaintext: string) => toHex(await crypto.subtle.sign("HMAC", key, encoder.encode(plaintext)));
      return { id: (await hash("pepper-id")).slice(0, 12), hash };
    })();
    peppers.set(secret, p);
  }
  return p;
}

/** The current pepper, or 500 SERVER_MISCONFIGURED before anything is written. */
export function currentPepper(env: { API_KEY_PEPPER?: string }): Promise<Pepper> {
  const secret = env.API_KEY_PEPPER;
  if (!secret) throw new ApiError(500, "SERVER_MISCONFIGURED", "The service is not configured to mint keys.");
  return loadPepper(secret);
}

/**
 * The previous pepper while a rotation is in progress, else null. The secret is always declared (wrangler passes
 * only declared secrets), so "no rotation" is an empty value, or `none` where a tool refuses an empty secret.
 */
export function previousPepper(env: { API_KEY_PEPPER_PREVIOUS?: string }): Promise<Pepper> | null {
  const secret = env.API_KEY_PEPPER_PREVIOUS?.trim();
  return secret && secret !== "none" ? loadPepper(secret) : null;
}

export async function sha256Hex(text: string): Promise<string> {
  return toHex(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

const secretDigests = new Map<string, Promise<ArrayBuffer>>();

/**
 * Constant-time equality of a presented string with a secret, of any lengths: compare their SHA-256 digests.
 * The secret's digest is computed once per isolate.
 */
export async function timingSafeEqualStrings(presented: string, secret: string): Promise<boolean> {
  let secretDigest = secretDigests.get(secret);
  if (!secretDigest) secretDigests.set(secret, (secretDigest = crypto.subtle.digest("SHA-256", encoder.encode(secret))));
  const [a, b] = await Promise.all([crypto.subtle.digest("SHA-256", encoder.encode(presented)), secretDigest]);
  return crypto.subtle.timingSafeEqual(a, b);
}
