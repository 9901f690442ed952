// Signing secrets: `whsec_` + base64 of 32 random bytes (the Standard Webhooks form every library takes), shown once
// and stored only AES-GCM encrypted under a key derived from WEBHOOK_SECRET_KEY. Each ciphertext names its key id,
// so the key can rotate: set the new one, move the old to WEBHOOK_SECRET_KEY_PREVIOUS, and the cron re-encrypts
// every row under the new key (docs: "Rotating the webhook secret key"). The endpoint id is the additional data, so
// a ciphertext copied to another row does not decrypt.
import { ApiError } from "../../lib/http/errors";
import { sha256Hex } from "../../lib/keys/keys";
import { fromBase64, toBase64 } from "../../lib/util/bytes";

export const SECRET_PREFIX = "whsec_";

export interface SecretKeyEnv {
  WEBHOOK_SECRET_KEY?: string;
  WEBHOOK_SECRET_KEY_PREVIOUS?: string;
}

interface SecretKey {
  id: string;
  key: CryptoKey;
}

export function newSigningSecret(): { secret: string; bytes: Uint8Array } {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return { secret: SECRET_PREFIX + toBase64(bytes), bytes };
}

const derived = new Map<string, Promise<SecretKey>>();

/** The AES-GCM key and its id (12 hex characters of a hash: it names the key, and reveals nothing of it). */
function deriveKey(material: string): Promise<SecretKey> {
  let key = derived.get(material);
  if (!key) {
    key = (async () => {
      const base = await crypto.subtle.importKey("raw", new TextEncoder().encode(material), "HKDF", false, ["deriveKey"]);
      const aes = await crypto.subtle.deriveKey(
        { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(), info: new TextEncoder().encode("webhook signing secrets v1") },
        base,
        { name: "AES-GCM", length: 256 },
        false,
        ["encrypt", "decrypt"],
      );
      return { id: (await sha256Hex(`webhook-secret-key-id:${material}`)).slice(0, 12), key: aes };
    })();
    derived.set(material, key);
  }
  return key;
}

/** The current key, or 500 SERVER_MISCONFIGURED before anything is written. */
export async function currentSecretKey(env: SecretKeyEnv): Promise<SecretKey> {
  const material = env.WEBHOOK_SECRET_KEY?.trim();
  if (!material || material.length < 32) {
    throw new ApiError(500, "SERVER_MISCONFIGURED", "The service cannot store signing secrets: WEBHOOK_SECRET_KEY is not set (at least 32 characters).");
  }
  return deriveKey(material);
}

async function keyById(env: SecretKeyEnv, id: string): Promise<SecretKey | null> {
  for (const material of [env.WEBHOOK_SECRET_KEY?.trim(), env.WEBHOOK_SECRET_KEY_PREVIOUS?.trim()]) {
    if (!material || material.length < 32) continue;
    const key = await deriveKey(material);
    if (key.id === id) return key;
  }
  return null;
}

export interface EncryptedSecret {
  ciphertext: string;
  keyId: string;
}

export async function encryptSecret(key: SecretKey, endpointId: string, bytes: Uint8Array): Promise<EncryptedSecret> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: new TextEncoder().encode(endpointId) }, key.key, bytes));
  const out = new Uint8Array(iv.length + sealed.length);
  out.set(iv);
  out.set(sealed, iv.length);
  return { ciphertext: `${key.id}:${toBase64(out)}`, keyId: key.id };
}

/** The secret's bytes, or null when no configured key has the id it names (or it does not decrypt). */
export async function decryptSecret(env: SecretKeyEnv, endpointId: string, ciphertext: string): Promise<Uint8Array | null> {
  const [id, data] = ciphertext.split(":");
  const key = id && data ? await keyById(env, id) : null;
  if (!key) return null;
  try {
    const raw = fromBase64(data);
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: raw.slice(0, 12), additionalData: new TextEncoder().encode(endpointId) },
      key.key,
      raw.slice(12),
    );
    return new Uint8Array(plain);
  } catch {
    return null;
  }
}

/** `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`: one Standard Webhooks signature. */
export async function signV1(secret: Uint8Array, id: string, timestamp: number, body: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", secret, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${id}.${timestamp}.${body}`)));
  return `v1,${toBase64(mac)}`;
}
