-- Core schema: organizations, their owner users, partners, every minted key (hashed), idempotency and audit.
-- Timestamps are ISO-8601 UTC strings with milliseconds ("2026-11-22T10:00:00.000Z"): readable and they sort.

-- Audit event types are rows, not a CHECK list, so a later migration adds a type with one INSERT.
CREATE TABLE audit_event_types (
  name TEXT PRIMARY KEY
) WITHOUT ROWID;

INSERT INTO audit_event_types (name) VALUES
  ('ORG_CREATED'),
  ('AUTH_FAIL_MASTER_KEY'),
  ('AUTH_FAIL_PARTNER_KEY'),
  ('AUTH_FAIL_ORG_KEY'),
  ('AUTH_FAIL_RATE_LIMITED_IP'),
  ('AUTH_FAIL_RATE_LIMITED_KEY');

CREATE TABLE partners (
  partner_id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
  org_count INTEGER NOT NULL DEFAULT 0,   -- kept in the provisioning batch, so a list's count costs no scan
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);

CREATE TABLE users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  email TEXT NOT NULL,
  password_hash TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
-- Emails are unique case-insensitively; the error names this index.
CREATE UNIQUE INDEX users_email_lower_unique ON users (lower(email));

CREATE TABLE organizations (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, only grows: the keyset for newest-first paging
  org_id TEXT NOT NULL UNIQUE,
  identifier TEXT NOT NULL UNIQUE,
  slug TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  domain TEXT NOT NULL CHECK (domain IN ('healthcare', 'aviation', 'financial', 'legal', 'pharmaceutical', 'general')),
  tier TEXT NOT NULL CHECK (tier IN ('starter', 'standard', 'enterprise')),
  allowed_origins TEXT NOT NULL DEFAULT '[]',  -- JSON array of exact origins
  status TEXT NOT NULL DEFAULT 'active'
    CHECK (status IN ('active', 'suspended', 'billing_suspended', 'revoked')),
  active INTEGER GENERATED ALWAYS AS (status = 'active') VIRTUAL,
  owner_user_id INTEGER REFERENCES users (id),
  partner_id TEXT REFERENCES partners (partner_id),
  external_id TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  CHECK ((partner_id IS NULL) = (external_id IS NULL))
);
CREATE UNIQUE INDEX organizations_partner_external_id_unique ON organizations (partner_id, external_id)
  WHERE partner_id IS NOT NULL;
-- (partner_id, seq): a partner's orgs newest first, one index range per page.
CREATE INDEX organizations_partner_seq ON organizations (partner_id, seq) WHERE partner_id IS NOT NULL;

-- Every minted key: org client (ck_live_) and server (sk_live_) keys, and partner keys (kvqp_).
-- Only the peppered HMAC-SHA256 of the plaintext is stored, with the id of the pepper that made it.
CREATE TABLE api_keys (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key_hash TEXT NOT NULL UNIQUE,
  pepper_id TEXT NOT NULL,
  key_type TEXT NOT NULL CHECK (key_type IN ('ck_live', 'sk_live', 'kvqp')),
  prefix TEXT NOT NULL,
  org_id TEXT REFERENCES organizations (org_id),
  partner_id TEXT REFERENCES partners (partner_id),
  revoked_at TEXT,
  created_at TEXT NOT NULL,
  CHECK ((org_id IS NULL) <> (partner_id IS NULL)),
  CHECK ((key_type = 'kvqp') = (partner_id IS NOT NULL))
);
CREATE INDEX api_keys_org ON api_keys (org_id) WHERE org_id IS NOT NULL;
CREATE INDEX api_keys_partner ON api_keys (partner_id) WHERE partner_id IS NOT NULL;

-- One row per (endpoint, key): the endpoint names the route and, for partner calls, the partner.
-- The row is written in the same batch as the change it guards, so a row always means "done".
CREATE TABLE idempotency_keys (
  endpoint TEXT NOT NULL,
  idempotency_key TEXT NOT NULL,
  fingerprint TEXT NOT NULL,        -- SHA-256 of the canonical request body
  status_code INTEGER NOT NULL,
  response TEXT NOT NULL,           -- the response body with every plaintext key removed
  created_at TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  PRIMARY KEY (endpoint, idempotency_key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);

CREATE TABLE audit_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  event_type TEXT NOT NULL REFERENCES audit_event_types (name),
  actor TEXT NOT NULL,              -- 'master:ORG_CREATE', 'partner:ptn_…', 'org:org_…', 'anonymous'
  org_id TEXT,                      -- no foreign key: audit rows outlive and precede orgs (auth failures)
  key_prefix TEXT,                  -- type prefix + 8 chars, never more
  request_id TEXT NOT NULL,
  ip TEXT,
  detail TEXT,
  created_at TEXT NOT NULL
);
CREATE INDEX audit_log_org_time ON audit_log (org_id, created_at);
CREATE INDEX audit_log_time ON audit_log (created_at);
