// Which operator action moves an org from which state to which. One table, used by the handlers, the OpenAPI
// descriptions and docs/api.md. An action from a state in `from` changes the org; from a state in `noop` it
// answers 200 and changes nothing; from any other state it is 409 ORG_STATE_CONFLICT.
import type { AuditEventType } from "../../lib/data/audit";
import type { MasterScope } from "../../lib/auth/master-key";
import type { OrgStatus } from "../../lib/keys/org-keys";

export type ResponseShape = "billing_suspended" | "suspended" | "reactivated" | "rotated" | "revoked";

export interface Transition {
  name: string;
  scope: MasterScope;
  path: string;
  summary: string;
  from: OrgStatus[];
  noop: OrgStatus[];
  /** The new status, or null to keep it. */
  to: OrgStatus | null;
  revokeKeys: boolean;
  /** Mint a new key pair (client ck_live_ and server sk_live_), returned once. */
  mintKeys: boolean;
  audit: AuditEventType;
  /** Ops endpoints take {confirm_org_id, idempotency_key?}; billing endpoints take no body. */
  confirmBody: boolean;
  /** Billing actions take `?reason=` (billing, dispute, usage) for their events; ops actions are reason "ops". */
  reasonQuery: boolean;
  /** The event the org's status change reports (key events follow from revokeKeys and mintKeys). */
  event: "org.suspended" | "org.reactivated" | "org.revoked" | null;
  /** key.revoked's reason for the keys this action revokes. */
  revokeReason: string;
  shape: ResponseShape;
}

export const TRANSITIONS: Transition[] = [
  {
    name: "billingSuspend",
    scope: "BILLING_SUSPEND",
    path: "/v1/admin/billing/org/{org_id}/suspend",
    summary: "Billing suspend: deactivate the org and permanently revoke every key",
    from: ["active", "suspended"],
    noop: ["billing_suspended"],
    to: "billing_suspended",
    revokeKeys: true,
    mintKeys: false,
    audit: "ADMIN_BILLING_SUSPEND",
    confirmBody: false,
    reasonQuery: true,
    event: "org.suspended",
    revokeReason: "billing_suspended",
    shape: "billing_suspended",
  },
  {
    name: "billingRotate",
    scope: "BILLING_ROTATE",
    path: "/v1/admin/billing/org/{org_id}/rotate",
    summary: "Billing rotate: restore a billing-suspended org with a new key pair (shown once)",
    // Only from billing_suspended: it never lifts an ops suspension (only reactivate does), and from active there is
    // nothing to restore, so of concurrent rotates exactly one mints and the others get 409.
    from: ["billing_suspended"],
    noop: [],
    to: "active",
    revokeKeys: true,
    mintKeys: true,
    audit: "KEY_ROTATED",
    confirmBody: false,
    reasonQuery: true,
    event: "org.reactivated",
    revokeReason: "billing_rotated",
    shape: "rotated",
  },
  {
    name: "suspend",
    scope: "ORG_SUSPEND",
    path: "/v1/admin/org/{org_id}/suspend",
    summary: "Suspend the org; its keys are kept and work again on reactivate",
    from: ["active"],
    noop: ["suspended"],
    to: "suspended",
    revokeKeys: false,
    mintKeys: false,
    audit: "ADMIN_ORG_SUSPEND",
    confirmBody: true,
    reasonQuery: false,
    event: "org.suspended",
    revokeReason: "",
    shape: "suspended",
  },
  {
    name: "reactivate",
    scope: "ORG_REACTIVATE",
    path: "/v1/admin/org/{org_id}/reactivate",
    summary: "Reactivate a suspended org; the same keys work again",
    from: ["suspended"],
    noop: ["active"],
    to: "active",
    revokeKeys: false,
    mintKeys: false,
    audit: "ADMIN_ORG_REACTIVATE",
    confirmBody: true,
    reasonQuery: false,
    event: "org.reactivated",
    revokeReason: "",
    shape: "reactivated",
  },
  {
    name: "forceRotate",
    scope: "ORG_FORCE_ROTATE",
    path: "/v1/admin/org/{org_id}/force-rotate",
    summary: "Force-rotate (leaked key): new key pair shown once, every old key revoked, status kept",
    from: ["active", "suspended"],
    noop: [],
    to: null,
    revokeKeys: true,
    mintKeys: true,
    audit: "ADMIN_ORG_FORCE_ROTATE",
    confirmBody: true,
    reasonQuery: false,
    event: null,
    revokeReason: "force_rotated",
    shape: "rotated",
  },
  {
    name: "forceRevoke",
    scope: "ORG_FORCE_REVOKE",
    path: "/v1/admin/org/{org_id}/force-revoke",
    summary: "Force-revoke: every key revoked, org deactivated for good",
    from: ["active", "suspended", "billing_suspended"],
    noop: ["revoked"],
    to: "revoked",
    revokeKeys: true,
    mintKeys: false,
    audit: "ADMIN_ORG_FORCE_REVOKE",
    confirmBody: true,
    reasonQuery: false,
    event: "org.revoked",
    revokeReason: "org_revoked",
    shape: "revoked",
  },
];
