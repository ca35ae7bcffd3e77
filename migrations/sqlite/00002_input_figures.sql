-- Per attempt and per job: how many input items and bytes came from the
-- slave's cache (hot) or were downloaded (cold), and the time spent fetching.

-- +goose Up
ALTER TABLE attempts ADD COLUMN hot_items INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN hot_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN cold_items INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN cold_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN fetch_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN hot_items INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN hot_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN cold_items INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN cold_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN fetch_ms INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE jobs DROP COLUMN fetch_ms;
ALTER TABLE jobs DROP COLUMN cold_bytes;
ALTER TABLE jobs DROP COLUMN cold_items;
ALTER TABLE jobs DROP COLUMN hot_bytes;
ALTER TABLE jobs DROP COLUMN hot_items;
ALTER TABLE attempts DROP COLUMN fetch_ms;
ALTER TABLE attempts DROP COLUMN cold_bytes;
ALTER TABLE attempts DROP COLUMN cold_items;
ALTER TABLE attempts DROP COLUMN hot_bytes;
ALTER TABLE attempts DROP COLUMN hot_items;
