-- Per attempt: the CPU time (user and system, in ms) and the peak memory (in
-- bytes) of the run's processes, as its slave measured them in the run's
-- cgroup; 0 when unknown.

-- +goose Up
ALTER TABLE attempts ADD COLUMN cpu_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN peak_memory INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE attempts DROP COLUMN peak_memory;
ALTER TABLE attempts DROP COLUMN cpu_ms;
