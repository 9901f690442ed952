-- Events to partners and orgs (Standard Webhooks). An event row is written in the batch of the change it reports;
-- the trigger below fans it out to the endpoints that want it in that same batch, so a change, its event and its
-- deliveries commit (or roll back) together. The delivery consumer sends what is due and records every attempt.

-- Where an owner wants its events. An owner is a partner (the events of its orgs) or an org (its own).
CREATE TABLE webhook_endpoints (
  id TEXT PRIMARY KEY,                          -- whep_<ULID>
  owner_type TEXT NOT NULL CHECK (owner_type IN ('partner', 'org')),
  owner_id TEXT NOT NULL,                       -- partner_id or org_id
  url TEXT NOT NULL,
  event_types TEXT,                             -- JSON array of event types; NULL: every type
  -- The signing secret, AES-GCM encrypted (never in plaintext): "<key id>:<base64 iv ‖ ciphertext>", where the key
  -- id names which WEBHOOK_SECRET_KEY encrypted it (so that key can rotate).
  secret_ciphertext TEXT NOT NULL,
  secret_key_id TEXT NOT NULL,
  -- After a secret rotation the old secret also signs until previous_secret_expires_at (24 hours).
  previous_secret_ciphertext TEXT,
  previous_secret_key_id TEXT,
  previous_secret_expires_at TEXT,
  -- enabled; failing: a delivery ran out of retries (a success enables it again); disabled: it answered 410 Gone.
  status TEXT NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'failing', 'disabled')),
  status_reason TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX webhook_endpoints_owner ON webhook_endpoints (owner_type, owner_id, created_at);

-- What happened, once. Payloads carry ids and prefixes, never a key, a secret or an email.
CREATE TABLE webhook_events (
  id TEXT PRIMARY KEY,                          -- msg_…: the webhook-id header, the same on every retry
  type TEXT NOT NULL,
  org_id TEXT,                                  -- the org it is about (NULL only for a partner's test event)
  partner_id TEXT,                              -- that org's partner, when it happened
  data TEXT NOT NULL,                           -- JSON
  dedupe_key TEXT UNIQUE,                       -- time-based and threshold events: each at most once
  created_at TEXT NOT NULL
);
CREATE INDEX webhook_events_created ON webhook_events (created_at);

-- One event to one endpoint: its state and schedule.
CREATE TABLE webhook_deliveries (
  id TEXT PRIMARY KEY,
  event_id TEXT NOT NULL,
  endpoint_id TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivering', 'delivered', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,          -- every attempt, replays included
  step INTEGER NOT NULL DEFAULT 0,              -- attempts since the schedule (re)started; a replay restarts it
  next_attempt_at TEXT,                         -- when pending: when it is due
  claim_id TEXT,
  last_status_code INTEGER,
  last_error TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  UNIQUE (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id);

-- Every attempt, for the owner to read: the answer's status code (NULL when none came), or the error.
CREATE TABLE webhook_attempts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  delivery_id TEXT NOT NULL,
  endpoint_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  status_code INTEGER,
  error TEXT,
  duration_ms INTEGER NOT NULL,
  next_attempt_at TEXT,                         -- the retry this attempt scheduled, if any
  created_at TEXT NOT NULL
);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, id);

-- The fan-out: every endpoint of the org and of its partner that is not disabled and takes this type. A test event
-- goes to one endpoint only (its handler inserts that delivery itself).
CREATE TRIGGER webhook_events_fan_out AFTER INSERT ON webhook_events
WHEN NEW.type != 'webhook.test'
BEGIN
  INSERT INTO webhook_deliveries (id, event_id, endpoint_id, next_attempt_at, created_at, updated_at)
  SELECT 'whdl_' || lower(hex(randomblob(12))), NEW.id, w.id, NEW.created_at, NEW.created_at, NEW.created_at
    FROM webhook_endpoints w
   WHERE w.status != 'disabled'
     AND ((w.owner_type = 'org' AND w.owner_id = NEW.org_id) OR (w.owner_type = 'partner' AND w.owner_id = NEW.partner_id))
     AND (w.event_types IS NULL OR EXISTS (SELECT 1 FROM json_each(w.event_types) WHERE value = NEW.type));
END;

-- key.expiring and key.expired come from the cron, which looks for keys whose window ends soon or has ended.
CREATE INDEX api_keys_window_end ON api_keys (expires_at) WHERE expires_at IS NOT NULL AND revoked_at IS NULL;
