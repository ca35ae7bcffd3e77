-- Scheduling: the latest runs of each description (in ms, comma separated,
-- oldest first) for its p90, beside the weighted average; a job's failure
-- cap (0: none); the slave whose run of the task failed, which a retry
-- avoids; straggler hedging: a job's opt-in, and the second run of an
-- attempt (its queue token, and once started its lease, slave, slot and
-- start).

-- +goose Up
ALTER TABLE durations ADD COLUMN recent TEXT NOT NULL DEFAULT '';
UPDATE durations SET recent = CAST(avg_ms AS TEXT);
ALTER TABLE jobs ADD COLUMN max_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN avoid_slave TEXT NOT NULL DEFAULT '';

ALTER TABLE jobs ADD COLUMN hedge INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN hedge_token TEXT NOT NULL DEFAULT '';
ALTER TABLE attempts ADD COLUMN hedge_lease TEXT;
ALTER TABLE attempts ADD COLUMN hedge_slave TEXT NOT NULL DEFAULT '';
ALTER TABLE attempts ADD COLUMN hedge_slot INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN hedge_started_at INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX attempts_hedge_lease ON attempts (hedge_lease);
CREATE INDEX attempts_hedge_slave ON attempts (hedge_slave, state);

-- +goose Down
DROP INDEX attempts_hedge_slave;
DROP INDEX attempts_hedge_lease;
ALTER TABLE attempts DROP COLUMN hedge_started_at;
ALTER TABLE attempts DROP COLUMN hedge_slot;
ALTER TABLE attempts DROP COLUMN hedge_slave;
ALTER TABLE attempts DROP COLUMN hedge_lease;
ALTER TABLE attempts DROP COLUMN hedge_token;
ALTER TABLE jobs DROP COLUMN hedge;
ALTER TABLE attempts DROP COLUMN avoid_slave;
ALTER TABLE jobs DROP COLUMN max_failures;
ALTER TABLE durations DROP COLUMN recent;
