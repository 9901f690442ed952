// The billing entrypoint: the payment worker's only way in. It holds no master key; the service binding that names
// this entrypoint (`entrypoint = "BillingService"`) is the credential. Each method runs the very route an operator
// would call over HTTPS (same validation, batch, audit row and idempotency row, with the Stripe event id as the
// Idempotency-Key) by passing a Request through the app with a marker in its env that only code in this Worker can
// set: requireMasterKey accepts it for the four billing scopes and nothing else.
import { WorkerEntrypoint } from "cloudflare:workers";
import { app } from "../app";
import type { Bindings } from "../lib/http/context";
import { BILLING_RPC, type MasterScope } from "../lib/auth/master-key";

/**
 * What a billing call answers: the HTTP status and JSON body the same route gives over HTTPS. Never a key: through
 * this binding org create and billing rotate mint none (claim-to-mint).
 */
export interface BillingAnswer {
  status: number;
  body: Record<string, any>;
}

export interface OrgCreateInput {
  org_id?: string;
  name?: string;
  domain?: string;
  tier?: string;
  allowed_origins?: string | string[];
  /** The org's owner: required through the binding (they claim the keys in the console). */
  owner_email?: string;
}

export interface UsageQuery {
  limit?: number;
  cursor?: string;
  threshold_crossed?: boolean;
}

/** The methods a bound worker sees (the RPC stub's shape). */
/** Why billing suspends or restores an org: it reaches partners and orgs in org.suspended / org.reactivated events. */
export type BillingReason = "billing" | "dispute" | "usage";

export interface BillingRpc {
  createOrg(eventId: string, body: OrgCreateInput): Promise<BillingAnswer>;
  billingSuspend(eventId: string, orgId: string, reason?: BillingReason): Promise<BillingAnswer>;
  billingRotate(eventId: string, orgId: string, reason?: BillingReason): Promise<BillingAnswer>;
  listUsage(query?: UsageQuery, orgId?: string): Promise<BillingAnswer>;
}

export class BillingService extends WorkerEntrypoint<Bindings> implements BillingRpc {
  /** POST /v1/admin/org/create, on checkout.session.completed. */
  createOrg(eventId: string, body: OrgCreateInput): Promise<BillingAnswer> {
    return this.call("ORG_CREATE", "POST", "/v1/admin/org/create", eventId, body);
  }

  /** POST /v1/admin/billing/org/{org_id}/suspend. */
  billingSuspend(eventId: string, orgId: string, reason: BillingReason = "billing"): Promise<BillingAnswer> {
    return this.call("BILLING_SUSPEND", "POST", `/v1/admin/billing/org/${encodeURIComponent(orgId)}/suspend?reason=${encodeURIComponent(reason)}`, eventId);
  }

  /** POST /v1/admin/billing/org/{org_id}/rotate. */
  billingRotate(eventId: string, orgId: string, reason: BillingReason = "billing"): Promise<BillingAnswer> {
    return this.call("BILLING_ROTATE", "POST", `/v1/admin/billing/org/${encodeURIComponent(orgId)}/rotate?reason=${encodeURIComponent(reason)}`, eventId);
  }

  /** GET /v1/admin/org/usage (one page), or GET /v1/admin/org/{org_id}/usage with `orgId`. */
  listUsage(query: UsageQuery = {}, orgId?: string): Promise<BillingAnswer> {
    const qs = new URLSearchParams();
    if (query.limit !== undefined) qs.set("limit", String(query.limit));
    if (query.cursor !== undefined) qs.set("cursor", query.cursor);
    if (query.threshold_crossed !== undefined) qs.set("threshold_crossed", String(query.threshold_crossed));
    const path = orgId === undefined ? `/v1/admin/org/usage?${qs}` : `/v1/admin/org/${encodeURIComponent(orgId)}/usage`;
    return this.call("ORG_USAGE_READ", "GET", path);
  }

  private async call(scope: MasterScope, method: "GET" | "POST", path: string, idempotencyKey?: string, json?: unknown): Promise<BillingAnswer> {
    const headers: Record<string, string> = {};
    if (idempotencyKey !== undefined) headers["Idempotency-Key"] = idempotencyKey;
    if (json !== undefined) headers["Content-Type"] = "application/json";
    const request = new Request(`https://billing.internal${path}`, { method, headers, body: json === undefined ? undefined : JSON.stringify(json) });
    const env = { ...this.env, [BILLING_RPC]: scope };
    const res = await app.fetch(request, env, this.ctx);
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  }
}
