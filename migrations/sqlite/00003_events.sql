-- What happened to slaves and attempts, in order: the record the reliability
-- cases are checked against, and what an operator reads after an incident.

-- +goose Up
CREATE TABLE events (
    id       INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    kind     TEXT    NOT NULL,
    slave_id TEXT    NOT NULL DEFAULT '',
    job_id   TEXT    NOT NULL DEFAULT '',
    task_id  TEXT    NOT NULL DEFAULT '',
    attempt  INTEGER NOT NULL DEFAULT -1,
    detail   TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX events_slave ON events (slave_id, id);
CREATE INDEX events_job ON events (job_id, id);

-- +goose Down
DROP TABLE events;
