-- The dashboard's test history reads a description's tasks across jobs,
-- and its list of flaky tests the tasks that ever failed: a small share
-- of all, which the index on g_failed finds without reading the rest.
-- A description is up to 1000 characters, over InnoDB's key length: the
-- index holds its first 191 (767 bytes in utf8mb4), which tell tests apart.

-- +goose Up
CREATE INDEX tasks_description ON tasks (description(191));
CREATE INDEX tasks_failed ON tasks (g_failed);

-- +goose Down
DROP INDEX tasks_failed ON tasks;
DROP INDEX tasks_description ON tasks;
