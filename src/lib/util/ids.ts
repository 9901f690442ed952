// Identifiers: Crockford base32 random strings, ULIDs and request ids.

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** `length` Crockford base32 characters, 5 random bits each (256 is a multiple of 32, so no bias). */
export function randomCrockford(length: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  let out = "";
  for (const b of bytes) out += CROCKFORD[b & 31];
  return out;
}

/** A ULID: 48-bit millisecond time, then 80 random bits, as 26 Crockford characters. */
export function ulid(now = Date.now()): string {
  let time = "";
  for (let i = 0, t = now; i < 10; i++, t = Math.floor(t / 32)) time = CROCKFORD[t % 32] + time;
  return time + randomCrockford(16);
}

export const newRequestId = (): string => `req_${ulid()}`;
