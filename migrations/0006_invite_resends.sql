-- Resend-invite limits (one per user per 10 minutes, five per rolling 24 hours), checked and recorded in the same
-- batch as the resend. Rows older than a day are removed by the cron.
CREATE TABLE invite_resends (
  user_id INTEGER NOT NULL REFERENCES users (id),
  sent_at TEXT NOT NULL,
  request_id TEXT NOT NULL,         -- later statements of the resend's batch test this to know it was allowed
  PRIMARY KEY (user_id, sent_at, request_id)
) WITHOUT ROWID;
