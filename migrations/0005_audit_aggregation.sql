-- Aggregated audit rows: auth failures and rate-limit refusals are counted into one row per (event type, subject,
-- minute), so a flood cannot become one row (or one D1 write) per request. Other rows have no aggregate_key.
ALTER TABLE audit_log ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
ALTER TABLE audit_log ADD COLUMN aggregate_key TEXT;
CREATE UNIQUE INDEX audit_log_aggregate_key ON audit_log (aggregate_key) WHERE aggregate_key IS NOT NULL;
