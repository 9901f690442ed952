// Minting and hashing of API keys. The plaintext exists only in the response that mints it; D1 holds the
// peppered HMAC-SHA256 of it, looked up through a unique index.
import { randomCrockford } from "../util/ids";
import { ApiError } from "../http/errors";

import { KEY_TYPES, type KeyType } from "./key-types";
import { toHex } from "../util/bytes";

export { KEY_TYPES, type KeyType };

const PREFIX_LENGTH = 8;
/** Format 1 (before Dec 2026): type prefix + 26 random Crockford characters. Still accepted until rotated. */
const V1_BODY_LENGTH = 26;
/** Format 2: type prefix + 8 (the public prefix) + "_" + 24 random + 7 of CRC32 = 160 random bits and a checksum. */
const V2_SECRET_LENGTH = 24;
const V2_CHECKSUM_LENGTH = 7;

export interface MintedKey {
  type: KeyType;
  plaintext: string;
  /** The 8 characters after the type prefix: what responses, logs and audit rows show. */
  prefix: string;
}

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** CRC-32 (IEEE, as zlib and GitHub's own tokens) of ASCII text. */
export function crc32(text: string): number {
  let c = 0xffffffff;
  for (let i = 0; i < text.length; i++) c = CRC_TABLE[(c ^ text.charCodeAt(i)) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A 32-bit number as 7 Crockford characters (35 bits, zero-padded). */
const checksumChars = (n: number) => {
  let out = "";
  for (let i = V2_CHECKSUM_LENGTH - 1; i >= 0; i--) out += CROCKFORD[Math.floor(n / 2 ** (5 * i)) % 32];
  return out;
};

/**
 * A new key, format 2: `sk_live_` + 8 (prefix) + `_` + 24 random + 7 (CRC32 of all before it). The "_" after the
 * prefix keeps the key out of other vendors' published patterns (Stripe's `(?i)(sk|rk)_live_[0-9a-z]{10,128}` needs
 * ten letters or digits after `sk_live_`), and the checksum lets anyone (GitHub's scanner, this service) tell a real
 * key from noise without a lookup.
 */
export function mintKey(type: KeyType): MintedKey {
  const prefix = randomCrockford(PREFIX_LENGTH);
  const head = `${KEY_TYPES[type]}${prefix}_${randomCrockford(V2_SECRET_LENGTH)}`;
  return { type, plaintext: head + checksumChars(crc32(head)), prefix };
}

const C = "[0-9A-HJKMNP-TV-Z]";
/** The exact pattern of format-2 keys, as registered with GitHub secret scanning (docs/security.md, "Leaked keys"). */
export const KEY_PATTERN_V2 = new RegExp(`(?:ck_live_|sk_live_|kvqp_)${C}{${PREFIX_LENGTH}}_${C}{${V2_SECRET_LENGTH + V2_CHECKSUM_LENGTH}}`);
const V2 = new RegExp(`^(ck_live_|sk_live_|kvqp_)(${C}{${PREFIX_LENGTH}})_${C}{${V2_SECRET_LENGTH}}(${C}{${V2_CHECKSUM_LENGTH}})$`);
const V1 = new RegExp(`^(ck_live_|sk_live_|kvqp_)${C}{${V1_BODY_LENGTH}}$`);

const typeOf = (typePrefix: string) => (Object.keys(KEY_TYPES) as KeyType[]).find((t) => KEY_TYPES[t] === typePrefix)!;

/**
 * The key's type and prefix if it is well-formed: format 2 with a checksum that holds, or format 1. Anything else is
 * refused before any hashing or lookup (a mistyped or made-up format-2 key costs no HMAC and no D1 read).
 */
export function parseKey(candidate: string): { type: KeyType; prefix: string; format: 1 | 2 } | null {
  const v2 = V2.exec(candidate);
  if (v2) {
    const head = candidate.slice(0, -V2_CHECKSUM_LENGTH);
    return checksumChars(crc32(head)) === v2[3] ? { type: typeOf(v2[1]), prefix: v2[2], format: 2 } : null;
  }
  const v1 = V1.exec(candidate);
  if (!v1) return null;
  return { type: typeOf(v1[1]), prefix: candidate.slice(v1[1].length, v1[1].length + PREFIX_LENGTH), format: 1 };
}

/** A peppered hasher; `id` names the pepper (a short HMAC of a constant) so rows record which one made them. */
export interface Pepper {
  id: string;
  hash(plaintext: string): Promise<string>;
}

const peppers = new Map<string, Promise<Pepper>>();
const encoder = new TextEncoder();

function loadPepper(secret: string): Promise<Pepper> {
  let p = peppers.get(secret);
  if (!p) {
    p = (async () => {
      const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
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

const secretBytes = new Map<string, Uint8Array>();

/**
 * Constant-time equality of a presented string with a secret (Cloudflare's documented pattern): equal lengths are
 * compared with timingSafeEqual; a different length compares the secret with itself, so the time taken depends only
 * on the secret's length, never on how much of it matched. No hashing on the request path.
 */
export async function timingSafeEqualStrings(presented: string, secret: string): Promise<boolean> {
  let b = secretBytes.get(secret);
  if (!b) secretBytes.set(secret, (b = encoder.encode(secret)));
  const a = encoder.encode(presented);
  if (a.byteLength !== b.byteLength) return !crypto.subtle.timingSafeEqual(b, b);
  return crypto.subtle.timingSafeEqual(a, b);
}
