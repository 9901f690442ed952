// GitHub secret scanning's signing keys: fetched from GITHUB_SECRET_SCANNING_KEYS_URL (GitHub's
// /meta/public_keys/secret_scanning, or a local stand-in) and cached in the isolate. A report names its key by
// Github-Public-Key-Identifier and signs the raw body with ECDSA P-256 / SHA-256 (Github-Public-Key-Signature, base64
// of a DER signature, which WebCrypto verifies only as raw r‖s). Only a current key is accepted.
import { fromBase64 } from "../../lib/util/bytes";

export const DEFAULT_KEYS_URL = "https://api.github.com/meta/public_keys/secret_scanning";
const CACHE_MS = 60 * 60_000;
/** An unknown key id refetches the list at most this often (GitHub rate-limits the endpoint). */
const REFETCH_MS = 60_000;

interface SigningKey {
  key: CryptoKey;
  isCurrent: boolean;
}

let cached: { keys: Map<string, SigningKey>; fetchedAt: number; url: string } | null = null;

async function importPem(pem: string): Promise<CryptoKey> {
  const b64 = pem.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, "").replace(/\s+/g, "");
  const der = fromBase64(b64);
  return crypto.subtle.importKey("spki", der, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
}

async function fetchKeys(url: string): Promise<Map<string, SigningKey>> {
  const res = await fetch(url, { headers: { accept: "application/json", "user-agent": "org-key-authority" } });
  if (!res.ok) throw new Error(`secret scanning keys: ${res.status}`);
  const body = (await res.json()) as { public_keys?: { key_identifier: string; key: string; is_current: boolean }[] };
  const keys = new Map<string, SigningKey>();
  for (const k of body.public_keys ?? []) {
    try {
      keys.set(k.key_identifier, { key: await importPem(k.key), isCurrent: k.is_current === true });
    } catch {
      // A key we cannot import can never verify: leave it out.
    }
  }
  return keys;
}

async function signingKey(url: string, id: string, now = Date.now()): Promise<SigningKey | undefined> {
  const stale = !cached || cached.url !== url || now - cached.fetchedAt > CACHE_MS;
  if (stale || (!cached!.keys.has(id) && now - cached!.fetchedAt > REFETCH_MS)) {
    cached = { keys: await fetchKeys(url), fetchedAt: now, url };
  }
  return cached!.keys.get(id);
}

/** A DER ECDSA signature (SEQUENCE of two INTEGERs) as the raw 64-byte r‖s WebCrypto verifies; null if malformed. */
export function derToRaw(der: Uint8Array): Uint8Array | null {
  let i = 0;
  const byte = () => (i < der.length ? der[i++] : -1);
  if (byte() !== 0x30) return null;
  let length = byte();
  if (length & 0x80) length = length === 0x81 ? byte() : -1;
  if (length < 0 || i + length !== der.length) return null;
  const raw = new Uint8Array(64);
  for (const offset of [0, 32]) {
    if (byte() !== 0x02) return null;
    const n = byte();
    if (n < 1 || n > 33 || i + n > der.length) return null;
    let int = der.subarray(i, i + n);
    i += n;
    while (int.length > 32 && int[0] === 0) int = int.subarray(1);
    if (int.length > 32) return null;
    raw.set(int, offset + 32 - int.length);
  }
  return i === der.length ? raw : null;
}

/** Whether `body` is signed by a current GitHub secret scanning key. */
export async function verifyGithubSignature(url: string, keyId: string | undefined, signatureB64: string | undefined, body: string): Promise<boolean> {
  if (!keyId || !signatureB64 || keyId.length > 200 || signatureB64.length > 400) return false;
  let der: Uint8Array;
  try {
    der = fromBase64(signatureB64);
  } catch {
    return false;
  }
  const raw = derToRaw(der);
  if (!raw) return false;
  const key = await signingKey(url, keyId);
  if (!key?.isCurrent) return false;
  return crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key.key, raw, new TextEncoder().encode(body));
}
