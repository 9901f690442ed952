// Set-password tokens and password hashing.
import { sha256Hex } from "../../lib/keys/keys";
import { fromBase64Url, toBase64Url } from "../../lib/util/bytes";

export const TOKEN_TTL_MS = 72 * 60 * 60 * 1000;
/** The most PBKDF2 iterations production workerd accepts (local runs allow more; tests cannot catch it). */
export const PBKDF2_ITERATIONS = 100_000;
export const PASSWORD_MIN = 12;
export const PASSWORD_MAX = 128;

/** 32 random bytes as base64url (43 characters); only its SHA-256 is stored. */
export async function newToken(): Promise<{ token: string; hash: string }> {
  const token = toBase64Url(crypto.getRandomValues(new Uint8Array(32)));
  return { token, hash: await sha256Hex(token) };
}

export const hashToken = (token: string) => sha256Hex(token);

/**
 * PBKDF2-SHA256 with a per-user salt; the parameters are stored beside the hash: pbkdf2-sha256$iter$salt$hash. The
 * password is NFKC-normalized first (as NIST SP 800-63B asks), so the same password typed on two keyboards (é as one
 * or two code points, full-width letters) hashes the same. A sign-in must normalize the same way.
 */
export async function hashPassword(password: string): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(password.normalize("NFKC")), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations: PBKDF2_ITERATIONS }, key, 256);
  return `pbkdf2-sha256$${PBKDF2_ITERATIONS}$${toBase64Url(salt)}$${toBase64Url(new Uint8Array(bits))}`;
}

/**
 * Whether `password` matches a stored pbkdf2-sha256$iter$salt$hash, compared in constant time. With no stored hash
 * (no such account, or no password set yet) it still derives once against a fixed salt, so a sign-in takes the same
 * time whether or not the account exists.
 */
export async function verifyPassword(password: string, stored: string | null): Promise<boolean> {
  const m = stored ? /^pbkdf2-sha256\$(\d+)\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/.exec(stored) : null;
  const iterations = m ? Math.min(Number(m[1]), PBKDF2_ITERATIONS) : PBKDF2_ITERATIONS;
  const salt = m ? fromBase64Url(m[2]) : new Uint8Array(16);
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(password.normalize("NFKC")), "PBKDF2", false, ["deriveBits"]);
  const bits = new Uint8Array(await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, key, 256));
  const expected = m ? fromBase64Url(m[3]) : new Uint8Array(32);
  return !!m && expected.byteLength === bits.byteLength && crypto.subtle.timingSafeEqual(bits, expected);
}
