-- A large job is written in parts, so that its first tasks start while
-- the rest are written: writing_until (ms) marks a job whose parts are
-- not all written yet, and when its writer's claim runs out (0: written).
-- A submission cut short is found by it and removed.

-- +goose Up
ALTER TABLE jobs ADD COLUMN writing_until BIGINT NOT NULL DEFAULT 0, ADD INDEX jobs_writing (writing_until);

-- +goose Down
ALTER TABLE jobs DROP INDEX jobs_writing, DROP COLUMN writing_until;
