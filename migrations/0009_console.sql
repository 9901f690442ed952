-- The owner console: sessions (hashes only), password-reset tokens, the emails that replace key emails, and the
-- audit types of console actions.

-- A session id is 32 random bytes in a __Host- cookie; only its SHA-256 is stored. Idle expiry: last_seen_at + 30
-- minutes; absolute: expires_at (created + 12 hours); ended_at: signed out, or ended by a password change.
CREATE TABLE console_sessions (
  id_hash TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users (id),
  created_at TEXT NOT NULL,
  last_seen_at TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  ended_at TEXT
) WITHOUT ROWID;
CREATE INDEX console_sessions_user ON console_sessions (user_id);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);

-- invite: from a welcome email, for an owner with no password yet; reset: from "Forgot your password?".
ALTER TABLE password_tokens ADD COLUMN purpose TEXT NOT NULL DEFAULT 'invite' CHECK (purpose IN ('invite', 'reset'));

-- The outbox learns two kinds (SQLite cannot alter a CHECK: the table is rebuilt, rows kept).
CREATE TABLE outbox_v2 (
  id TEXT PRIMARY KEY,
  -- welcome_email: a new org's owner (set your password, or sign in); access_restored: billing restored the org,
  -- make new keys in the console; password_reset: a reset link. None carries a key.
  kind TEXT NOT NULL CHECK (kind IN ('welcome_email', 'access_restored', 'password_reset')),
  payload TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  claim_id TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
INSERT INTO outbox_v2 SELECT id, kind, payload, status, attempts, claim_id, created_at, updated_at FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v2 RENAME TO outbox;
CREATE INDEX outbox_status ON outbox (status, updated_at);

INSERT INTO audit_event_types (name) VALUES
  ('CONSOLE_SIGNED_IN'),
  ('CONSOLE_SIGN_IN_FAILED'),
  ('CONSOLE_SIGNED_OUT'),
  ('PASSWORD_RESET_REQUESTED'),
  ('KEYS_CREATED');
