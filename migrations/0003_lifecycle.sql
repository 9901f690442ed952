-- Org lifecycle (suspend, reactivate, rotate, revoke), usage counting, and their audit event types.

ALTER TABLE organizations ADD COLUMN status_changed_at TEXT;
-- The request that last changed this org: later statements of the same batch test it to know the change happened.
ALTER TABLE organizations ADD COLUMN last_request_id TEXT;

INSERT INTO audit_event_types (name) VALUES
  ('ADMIN_BILLING_SUSPEND'),
  ('ADMIN_ORG_SUSPEND'),
  ('ADMIN_ORG_REACTIVATE'),
  ('ADMIN_ORG_FORCE_ROTATE'),
  ('ADMIN_ORG_FORCE_REVOKE'),
  ('KEY_REVOKED');

-- Verified requests per org per UTC day, summed by the usage queue's consumer (never written per request).
CREATE TABLE usage_daily (
  org_id TEXT NOT NULL,
  day TEXT NOT NULL,                -- YYYY-MM-DD (UTC)
  count INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (org_id, day)
) WITHOUT ROWID;
