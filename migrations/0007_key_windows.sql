-- Rotation with overlap and the key inventory: a rotated-out key may live on until expires_at (set in the rotation's
-- batch; null = no end), and last_used_at (minute precision) is written by the usage queue's consumer, never per
-- request.
ALTER TABLE api_keys ADD COLUMN expires_at TEXT;
ALTER TABLE api_keys ADD COLUMN last_used_at TEXT;
