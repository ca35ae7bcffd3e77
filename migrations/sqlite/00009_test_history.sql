-- The dashboard's test history reads a description's tasks across jobs,
-- and its list of flaky tests the tasks that ever failed: a small share
-- of all, which the index on g_failed finds without reading the rest.

-- +goose Up
CREATE INDEX tasks_description ON tasks (description);
CREATE INDEX tasks_failed ON tasks (g_failed);

-- +goose Down
DROP INDEX tasks_failed;
DROP INDEX tasks_description;
