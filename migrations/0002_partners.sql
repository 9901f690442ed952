-- Partner provisioning: audit event types and the transactional outbox for the welcome / set-password email.

INSERT INTO audit_event_types (name) VALUES
  ('PARTNER_CREATED'),
  ('PARTNER_KEY_ROTATED'),
  ('PARTNER_DEACTIVATED'),
  ('ORG_PROVISIONED'),
  ('USER_CREATED'),
  ('KEY_ROTATED');

-- Written in the batch of the change that needs the message; delivered later. Holds ids only, never a secret:
-- the set-password token is made when the email is sent.
CREATE TABLE outbox (
  id TEXT PRIMARY KEY,              -- ULID
  kind TEXT NOT NULL CHECK (kind IN ('welcome_email')),
  payload TEXT NOT NULL,            -- JSON: {"user_id": …, "org_id": "…"}
  -- pending: to send (new, or waiting for a retry); sending: claimed by the consumer; sent / failed: done.
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  claim_id TEXT,                    -- the consumer run that claimed it: later statements of its batch test this
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX outbox_status ON outbox (status, updated_at);
