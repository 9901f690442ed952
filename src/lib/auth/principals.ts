// Who a request authenticated as: set on the request context by the auth middleware. One home for these types, so
// imports run one way (the middleware and lib/http/context import them; they import neither).
import type { KeyType } from "../keys/key-types";

/** An org key (client or server) that authenticated; set by requireOrgKey. */
export interface OrgPrincipal {
  key_id: number;
  org_id: string;
  key_type: KeyType;
  /** ck_live_/sk_live_ + 8 characters. */
  key_prefix: string;
  key_hash: string;
  /** The key was replaced by a rotation with a window: it may still be used until then, but controls nothing. */
  retiring: boolean;
}

/** A partner key that authenticated; set by requirePartnerKey. */
export interface PartnerPrincipal {
  partner_id: string;
  /** The key's row id. */
  key_id: number;
  /** kvqp_ + 8 characters, for audit rows. */
  key_prefix: string;
}
