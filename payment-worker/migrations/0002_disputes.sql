-- A dispute keeps its billing suspension until Stripe closes it in our favour: a paid invoice no longer lifts it.
ALTER TABLE billing_accounts ADD COLUMN disputed_at INTEGER;      -- Stripe `created` of the open (or lost) dispute
ALTER TABLE billing_accounts ADD COLUMN dispute_status TEXT;      -- open | lost (null: none, or won)
