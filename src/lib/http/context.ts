import type { Context } from "hono";
import type { OrgPrincipal, PartnerPrincipal } from "../auth/principals";

export type Bindings = Env & {
  /** Set only while a pepper rotation is in progress. */
  API_KEY_PEPPER_PREVIOUS?: string;
  /** Set only while the webhook secret key rotates. */
  WEBHOOK_SECRET_KEY_PREVIOUS?: string;
  /** "off" skips the rate-limiter calls, for local benchmarks only. */
  RATE_LIMITS?: string;
};

export interface AppEnv {
  Bindings: Bindings;
  Variables: {
    requestId: string;
    /** Set by requirePartnerKey. */
    partner: PartnerPrincipal;
    /** Set by requireOrgKey. */
    org: OrgPrincipal;
    /** Set when the request wrote events: the webhook consumer is woken after the response. */
    eventsWritten: boolean;
  };
}

export type AppContext = Context<AppEnv>;

/** The two fields every JSON object this service returns carries. */
export const envelope = (c: AppContext) => ({ request_id: c.get("requestId"), timestamp: new Date().toISOString() });
