// The three kinds of key and their public prefixes. Alone in this module (it imports nothing) so the principal types
// can name them without importing the minting code (src/lib/ has no import cycle: scripts/check-imports.mjs).
export const KEY_TYPES = {
  ck_live: "ck_live_", // org client key
  sk_live: "sk_live_", // org server key
  kvqp: "kvqp_", // partner key
} as const;
export type KeyType = keyof typeof KEY_TYPES;
