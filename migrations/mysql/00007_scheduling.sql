-- Scheduling: the latest runs of each description (in ms, comma separated,
-- oldest first) for its p90, beside the weighted average; a job's failure
-- cap (0: none); the slave whose run of the task failed, which a retry
-- avoids; straggler hedging: a job's opt-in, and the second run of an
-- attempt (its queue token, and once started its lease, slave, slot and
-- start).

-- +goose Up
ALTER TABLE durations ADD COLUMN recent VARCHAR(512) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '';
UPDATE durations SET recent = CAST(avg_ms AS CHAR);
ALTER TABLE jobs ADD COLUMN max_failures INT NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN avoid_slave VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '';

ALTER TABLE jobs ADD COLUMN hedge TINYINT NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN hedge_token VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '',
    ADD COLUMN hedge_lease CHAR(32) CHARACTER SET ascii COLLATE ascii_bin NULL,
    ADD COLUMN hedge_slave VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '',
    ADD COLUMN hedge_slot INT NOT NULL DEFAULT 0,
    ADD COLUMN hedge_started_at BIGINT NOT NULL DEFAULT 0,
    ADD UNIQUE KEY attempts_hedge_lease (hedge_lease),
    ADD INDEX attempts_hedge_slave (hedge_slave, state);

-- +goose Down
ALTER TABLE attempts DROP INDEX attempts_hedge_slave, DROP INDEX attempts_hedge_lease,
    DROP COLUMN hedge_started_at, DROP COLUMN hedge_slot, DROP COLUMN hedge_slave,
    DROP COLUMN hedge_lease, DROP COLUMN hedge_token;
ALTER TABLE jobs DROP COLUMN hedge;
ALTER TABLE attempts DROP COLUMN avoid_slave;
ALTER TABLE jobs DROP COLUMN max_failures;
ALTER TABLE durations DROP COLUMN recent;
