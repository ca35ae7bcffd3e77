-- Scheduling: the latest runs of each description (in ms, comma separated,
-- oldest first) for its p90, beside the weighted average; a job's failure
-- cap (0: none); the slave whose run of the task failed, which a retry
-- avoids.

-- +goose Up
ALTER TABLE durations ADD COLUMN recent VARCHAR(512) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '';
UPDATE durations SET recent = CAST(avg_ms AS CHAR);
ALTER TABLE jobs ADD COLUMN max_failures INT NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN avoid_slave VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE attempts DROP COLUMN avoid_slave;
ALTER TABLE jobs DROP COLUMN max_failures;
ALTER TABLE durations DROP COLUMN recent;
