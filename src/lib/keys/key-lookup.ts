// Finding a presented key's row by its peppered hash, under the current pepper and, during a rotation, the
// previous one. A key found under the previous pepper is re-hashed to the current one.
import type { Bindings } from "../http/context";
import { currentPepper, previousPepper } from "./keys";

export interface KeyHashes {
  current: string;
  currentPepperId: string;
  /** Only while API_KEY_PEPPER_PREVIOUS is set. */
  previous: string | null;
}

export async function keyHashes(env: Bindings, plaintext: string): Promise<KeyHashes> {
  const current = await currentPepper(env);
  const previous = previousPepper(env);
  const [currentHash, previousHash] = await Promise.all([current.hash(plaintext), previous ? previous.then((p) => p.hash(plaintext)) : null]);
  return { current: currentHash, currentPepperId: current.id, previous: previousHash };
}

/** `key_hash IN (?, ?)`, matching the key under either pepper. */
export const hashBinds = (h: KeyHashes) => [h.current, h.previous ?? h.current];

/** The statement that moves a key verified under the previous pepper to the current one. */
export const rehashStatement = (db: D1Database, keyId: number, h: KeyHashes) =>
  db.prepare(`UPDATE api_keys SET key_hash = ?, pepper_id = ? WHERE id = ?`).bind(h.current, h.currentPepperId, keyId);
