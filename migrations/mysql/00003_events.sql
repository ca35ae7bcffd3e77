-- What happened to slaves and attempts, in order: the record the reliability
-- cases are checked against, and what an operator reads after an incident.

-- +goose Up
CREATE TABLE events (
    id       BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at       BIGINT NOT NULL,
    kind     VARCHAR(32) CHARACTER SET ascii NOT NULL,
    slave_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '',
    job_id   VARCHAR(200) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '',
    task_id  VARCHAR(100) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '',
    attempt  INT NOT NULL DEFAULT -1,
    detail   VARCHAR(1000) NOT NULL DEFAULT '',
    INDEX events_slave (slave_id, id),
    INDEX events_job (job_id, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- +goose Down
DROP TABLE events;
