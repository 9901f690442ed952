-- Owner onboarding: single-use set-password tokens (hashes only), and the audit types of email and password.

CREATE TABLE password_tokens (
  token_hash TEXT PRIMARY KEY,      -- SHA-256 of the 32 random bytes; the token itself is only in the email
  user_id INTEGER NOT NULL REFERENCES users (id),
  created_at TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  used_at TEXT,                     -- set when consumed, or when a newer link replaces this one
  used_request_id TEXT
) WITHOUT ROWID;
CREATE INDEX password_tokens_user ON password_tokens (user_id);

ALTER TABLE users ADD COLUMN password_set_at TEXT;

INSERT INTO audit_event_types (name) VALUES
  ('WELCOME_EMAIL_SENT'),
  ('WELCOME_EMAIL_FAILED'),
  ('INVITE_RESENT'),
  ('PASSWORD_SET');
