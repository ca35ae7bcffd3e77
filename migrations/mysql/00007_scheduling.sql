-- Scheduling: the latest runs of each description (in ms, comma separated,
-- oldest first) for its p90, beside the weighted average.

-- +goose Up
ALTER TABLE durations ADD COLUMN recent VARCHAR(512) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '';
UPDATE durations SET recent = CAST(avg_ms AS CHAR);

-- +goose Down
ALTER TABLE durations DROP COLUMN recent;
