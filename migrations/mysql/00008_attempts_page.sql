-- A page of a job's attempts (GET /api/v1/jobs/{id}/tasks) is ordered by
-- task index and attempt. With the task's index copied into its attempts,
-- one index of attempts holds that order, and a page is read in it: no
-- sort of the whole job, whatever its size.

-- +goose Up
ALTER TABLE attempts ADD COLUMN task_idx INT NOT NULL DEFAULT 0;
UPDATE attempts a JOIN tasks t ON t.id = a.task_row SET a.task_idx = t.idx;
CREATE INDEX attempts_page ON attempts (job_id, task_idx, attempt);

-- +goose Down
DROP INDEX attempts_page ON attempts;
ALTER TABLE attempts DROP COLUMN task_idx;
