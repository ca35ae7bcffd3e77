-- Per attempt: the time (in ms) its slave took to make the task's container
-- image present (docker_image), apart from the run's duration; 0 for a task
-- that runs on the host.

-- +goose Up
ALTER TABLE attempts ADD COLUMN image_pull_ms BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE attempts DROP COLUMN image_pull_ms;
