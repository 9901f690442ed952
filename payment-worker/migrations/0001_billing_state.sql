-- What the payment worker remembers of Stripe, in its own D1 database (the service never sees Stripe ids):
-- which customer and subscription own each org, which charges and payment intents belong to which org, the last
-- billing event applied per org, and every event id it processed (kept 35 days; Stripe retries for 3).

CREATE TABLE billing_accounts (
  org_id TEXT PRIMARY KEY,
  customer_id TEXT NOT NULL,          -- cus_… recorded at checkout: later events must name the same customer
  subscription_id TEXT,               -- sub_… recorded at checkout (null for one-off payments)
  email TEXT,                         -- the only address new keys are ever emailed to
  -- The last billing event applied to this org, as (created, rank, event id): an event that does not sort after it
  -- is acknowledged and changes nothing (Stripe does not deliver in order).
  last_event_created INTEGER,
  last_event_rank INTEGER,
  last_event_id TEXT,
  cancelled_at INTEGER,               -- Stripe `created` of customer.subscription.deleted: cancelled stays cancelled
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX billing_accounts_subscription ON billing_accounts (subscription_id) WHERE subscription_id IS NOT NULL;

-- Charges (ch_…) and payment intents (pi_…) seen on checkouts and paid invoices: a dispute names only these.
CREATE TABLE billing_payments (
  payment_ref TEXT PRIMARY KEY,
  org_id TEXT NOT NULL REFERENCES billing_accounts (org_id),
  created_at TEXT NOT NULL
);

-- Every handled event id. 'processing' is a claim (a concurrent delivery gets 409 and Stripe retries it later; a
-- claim older than the stale limit is taken over); 'done' answers every redelivery with 200 and no action.
CREATE TABLE stripe_events (
  event_id TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('processing', 'done')),
  outcome TEXT,
  received_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX stripe_events_updated ON stripe_events (updated_at);
