-- Trust, third pass: per-partner quotas, and the audit types they need.

-- Per-partner counters in fixed windows (a UTC day, a UTC hour). `cap` is the limit in force when the row was last
-- written, so the CHECK refuses the increment that would pass it: the statement fails, its whole batch rolls back,
-- and the handler answers 429. Rows older than two days are removed by the cron.
CREATE TABLE partner_counters (
  partner_id TEXT NOT NULL REFERENCES partners (partner_id),
  name TEXT NOT NULL CHECK (name IN ('welcome_emails', 'email_taken')),
  window_start TEXT NOT NULL,       -- ISO: the UTC day or hour the count belongs to
  count INTEGER NOT NULL,
  cap INTEGER NOT NULL,
  CONSTRAINT partner_quota CHECK (count <= cap),
  PRIMARY KEY (partner_id, name, window_start)
) WITHOUT ROWID;

INSERT INTO audit_event_types (name) VALUES
  ('PROVISION_EMAIL_TAKEN'),
  ('PARTNER_QUOTA_EXCEEDED'),
  ('KEY_REFUSED_RETIRING');
