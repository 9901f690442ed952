-- Leaked keys: the audit types of a reported key, and the owner's email about it (the outbox learns one kind).

CREATE TABLE outbox_v3 (
  id TEXT PRIMARY KEY,
  -- welcome_email, access_restored, password_reset (see 0009); key_exposed: a secret key of the org was reported
  -- leaked and revoked (the email names its prefix and where it was found, never the key).
  kind TEXT NOT NULL CHECK (kind IN ('welcome_email', 'access_restored', 'password_reset', 'key_exposed')),
  payload TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  claim_id TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
INSERT INTO outbox_v3 SELECT id, kind, payload, status, attempts, claim_id, created_at, updated_at FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v3 RENAME TO outbox;
CREATE INDEX outbox_status ON outbox (status, updated_at);

INSERT INTO audit_event_types (name) VALUES
  ('KEY_EXPOSED'),            -- a secret key reported leaked, and revoked by that report
  ('CLIENT_KEY_REPORTED'),    -- a client key reported public: publishable by design, so audited, not revoked
  ('AUTH_FAIL_GITHUB_SIGNATURE');  -- a secret scanning report whose signature did not verify
