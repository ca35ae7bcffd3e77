-- Retention deletes the events and slave registrations older than
-- [master] retention_days: these indexes find them without a scan.

-- +goose Up
CREATE INDEX events_at ON events (at);
CREATE INDEX slaves_ended ON slaves (ended_at);

-- +goose Down
DROP INDEX events_at;
DROP INDEX slaves_ended;
