-- dist_test schema for MySQL and MariaDB. The same tables as the SQLite
-- schema; ids, tokens and hashes are ASCII and compared byte for byte.
-- Times are Unix milliseconds, 0 meaning "not yet".

-- +goose Up
CREATE TABLE jobs (
    id               VARCHAR(200) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    user             VARCHAR(200) NOT NULL DEFAULT '',
    name             VARCHAR(200) NOT NULL DEFAULT '',
    submitted_at     BIGINT NOT NULL,
    finished_at      BIGINT NOT NULL DEFAULT 0,
    canceled         TINYINT NOT NULL DEFAULT 0,
    total_tasks      INT NOT NULL DEFAULT 0,
    finished_tasks   INT NOT NULL DEFAULT 0,
    running_tasks    INT NOT NULL DEFAULT 0,
    retried_tasks    INT NOT NULL DEFAULT 0,
    timedout_tasks   INT NOT NULL DEFAULT 0,
    failed_tasks     INT NOT NULL DEFAULT 0,
    succeeded_tasks  INT NOT NULL DEFAULT 0,
    canceled_tasks   INT NOT NULL DEFAULT 0,
    total_groups     INT NOT NULL DEFAULT 0,
    finished_groups  INT NOT NULL DEFAULT 0,
    failed_groups    INT NOT NULL DEFAULT 0,
    succeeded_groups INT NOT NULL DEFAULT 0,
    flaky_groups     INT NOT NULL DEFAULT 0,
    flaky_tasks      INT NOT NULL DEFAULT 0,
    canceled_groups  INT NOT NULL DEFAULT 0,
    INDEX jobs_submitted (submitted_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE tasks (
    id             BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    job_id         VARCHAR(200) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    task_id        VARCHAR(100) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    idx            INT NOT NULL,
    isolate_hash   VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    description    VARCHAR(1000) NOT NULL,
    timeout_ms     BIGINT NOT NULL,
    max_retries    INT NOT NULL,
    artifact_globs TEXT NOT NULL,
    docker_image   VARCHAR(500) NOT NULL DEFAULT '',
    expected_ms    BIGINT NOT NULL DEFAULT 0,
    g_attempts     INT NOT NULL DEFAULT 0,
    g_finished     INT NOT NULL DEFAULT 0,
    g_succeeded    INT NOT NULL DEFAULT 0,
    g_failed       INT NOT NULL DEFAULT 0,
    g_timedout     INT NOT NULL DEFAULT 0,
    g_canceled     INT NOT NULL DEFAULT 0,
    g_retried      INT NOT NULL DEFAULT 0,
    g_latest       INT NOT NULL DEFAULT 0,
    g_cancel       TINYINT NOT NULL DEFAULT 0,
    UNIQUE KEY tasks_job_task (job_id, task_id),
    INDEX tasks_job_idx (job_id, idx),
    CONSTRAINT tasks_job FOREIGN KEY (job_id) REFERENCES jobs (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE attempts (
    id           BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    task_row     BIGINT NOT NULL,
    job_id       VARCHAR(200) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    attempt      INT NOT NULL,
    state        VARCHAR(16) CHARACTER SET ascii NOT NULL,
    token        CHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    lease        CHAR(32) CHARACTER SET ascii COLLATE ascii_bin NULL,
    priority     BIGINT NOT NULL,
    enqueued     TINYINT NOT NULL DEFAULT 0,
    entry_id     BIGINT UNSIGNED NOT NULL DEFAULT 0,
    slave_id     VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '',
    slot         INT NOT NULL DEFAULT 0,
    hostname     VARCHAR(255) NOT NULL DEFAULT '',
    runs         INT NOT NULL DEFAULT 0,
    submitted_at BIGINT NOT NULL,
    started_at   BIGINT NOT NULL DEFAULT 0,
    finished_at  BIGINT NOT NULL DEFAULT 0,
    exit_code    INT NULL,
    stdout_key   VARCHAR(1024) NOT NULL DEFAULT '',
    stderr_key   VARCHAR(1024) NOT NULL DEFAULT '',
    artifact_key VARCHAR(1024) NOT NULL DEFAULT '',
    missing      VARCHAR(255) NOT NULL DEFAULT '',
    error        TEXT NOT NULL,
    UNIQUE KEY attempts_task_attempt (task_row, attempt),
    UNIQUE KEY attempts_lease (lease),
    INDEX attempts_job_state (job_id, state),
    INDEX attempts_feed (state, enqueued, job_id, priority, id),
    INDEX attempts_slave (slave_id, state),
    CONSTRAINT attempts_task FOREIGN KEY (task_row) REFERENCES tasks (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE durations (
    desc_hash   CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    description VARCHAR(1000) NOT NULL,
    avg_ms      BIGINT NOT NULL,
    samples     INT NOT NULL,
    updated_at  BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE slaves (
    id              VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    hostname        VARCHAR(255) NOT NULL,
    slots           INT NOT NULL,
    version         VARCHAR(100) NOT NULL DEFAULT '',
    state           VARCHAR(16) CHARACTER SET ascii NOT NULL,
    cpus            INT NOT NULL DEFAULT 0,
    memory_bytes    BIGINT NOT NULL DEFAULT 0,
    disk_free_bytes BIGINT NOT NULL DEFAULT 0,
    registered_at   BIGINT NOT NULL,
    last_heartbeat  BIGINT NOT NULL,
    ended_at        BIGINT NOT NULL DEFAULT 0,
    INDEX slaves_state (state, last_heartbeat)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- +goose Down
DROP TABLE slaves;
DROP TABLE durations;
DROP TABLE attempts;
DROP TABLE tasks;
DROP TABLE jobs;
