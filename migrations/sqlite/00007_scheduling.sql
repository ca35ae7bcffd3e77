-- Scheduling: the latest runs of each description (in ms, comma separated,
-- oldest first) for its p90, beside the weighted average.

-- +goose Up
ALTER TABLE durations ADD COLUMN recent TEXT NOT NULL DEFAULT '';
UPDATE durations SET recent = CAST(avg_ms AS TEXT);

-- +goose Down
ALTER TABLE durations DROP COLUMN recent;
