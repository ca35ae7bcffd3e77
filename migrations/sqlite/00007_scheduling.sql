-- Scheduling: the latest runs of each description (in ms, comma separated,
-- oldest first) for its p90, beside the weighted average; a job's failure
-- cap (0: none).

-- +goose Up
ALTER TABLE durations ADD COLUMN recent TEXT NOT NULL DEFAULT '';
UPDATE durations SET recent = CAST(avg_ms AS TEXT);
ALTER TABLE jobs ADD COLUMN max_failures INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE jobs DROP COLUMN max_failures;
ALTER TABLE durations DROP COLUMN recent;
