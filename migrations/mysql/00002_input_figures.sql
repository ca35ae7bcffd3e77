-- Per attempt and per job: how many input items and bytes came from the
-- slave's cache (hot) or were downloaded (cold), and the time spent fetching.

-- +goose Up
ALTER TABLE attempts
    ADD COLUMN hot_items BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN hot_bytes BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN cold_items BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN cold_bytes BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN fetch_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs
    ADD COLUMN hot_items BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN hot_bytes BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN cold_items BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN cold_bytes BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN fetch_ms BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE jobs DROP COLUMN hot_items, DROP COLUMN hot_bytes, DROP COLUMN cold_items,
    DROP COLUMN cold_bytes, DROP COLUMN fetch_ms;
ALTER TABLE attempts DROP COLUMN hot_items, DROP COLUMN hot_bytes, DROP COLUMN cold_items,
    DROP COLUMN cold_bytes, DROP COLUMN fetch_ms;
