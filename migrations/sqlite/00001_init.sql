-- dist_test schema for SQLite (the embedded default). Times are Unix
-- milliseconds, 0 meaning "not yet"; both dialects store them the same way.

-- +goose Up
CREATE TABLE jobs (
    id               TEXT    NOT NULL PRIMARY KEY,
    user             TEXT    NOT NULL DEFAULT '',
    name             TEXT    NOT NULL DEFAULT '',
    submitted_at     INTEGER NOT NULL,
    finished_at      INTEGER NOT NULL DEFAULT 0,
    canceled         INTEGER NOT NULL DEFAULT 0,
    -- the legacy /job_status counters, moved on every state change
    total_tasks      INTEGER NOT NULL DEFAULT 0,
    finished_tasks   INTEGER NOT NULL DEFAULT 0,
    running_tasks    INTEGER NOT NULL DEFAULT 0,
    retried_tasks    INTEGER NOT NULL DEFAULT 0,
    timedout_tasks   INTEGER NOT NULL DEFAULT 0,
    failed_tasks     INTEGER NOT NULL DEFAULT 0,
    succeeded_tasks  INTEGER NOT NULL DEFAULT 0,
    canceled_tasks   INTEGER NOT NULL DEFAULT 0,
    total_groups     INTEGER NOT NULL DEFAULT 0,
    finished_groups  INTEGER NOT NULL DEFAULT 0,
    failed_groups    INTEGER NOT NULL DEFAULT 0,
    succeeded_groups INTEGER NOT NULL DEFAULT 0,
    flaky_groups     INTEGER NOT NULL DEFAULT 0,
    flaky_tasks      INTEGER NOT NULL DEFAULT 0,
    canceled_groups  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_submitted ON jobs (submitted_at);

-- A task is a group of attempts sharing a task id. g_* summarise its
-- attempts (model.Group) so counters move without reading other rows.
CREATE TABLE tasks (
    id             INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    job_id         TEXT    NOT NULL REFERENCES jobs (id),
    task_id        TEXT    NOT NULL,
    idx            INTEGER NOT NULL,
    isolate_hash   TEXT    NOT NULL,
    description    TEXT    NOT NULL,
    timeout_ms     INTEGER NOT NULL,
    max_retries    INTEGER NOT NULL,
    artifact_globs TEXT    NOT NULL DEFAULT '[]',
    docker_image   TEXT    NOT NULL DEFAULT '',
    expected_ms    INTEGER NOT NULL DEFAULT 0,
    g_attempts     INTEGER NOT NULL DEFAULT 0,
    g_finished     INTEGER NOT NULL DEFAULT 0,
    g_succeeded    INTEGER NOT NULL DEFAULT 0,
    g_failed       INTEGER NOT NULL DEFAULT 0,
    g_timedout     INTEGER NOT NULL DEFAULT 0,
    g_canceled     INTEGER NOT NULL DEFAULT 0,
    g_retried      INTEGER NOT NULL DEFAULT 0,
    g_latest       INTEGER NOT NULL DEFAULT 0,
    g_cancel       INTEGER NOT NULL DEFAULT 0,
    UNIQUE (job_id, task_id)
);
CREATE INDEX tasks_job_idx ON tasks (job_id, idx);

CREATE TABLE attempts (
    id           INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    task_row     INTEGER NOT NULL REFERENCES tasks (id),
    job_id       TEXT    NOT NULL,
    attempt      INTEGER NOT NULL,
    state        TEXT    NOT NULL,
    token        TEXT    NOT NULL,
    lease        TEXT,
    priority     INTEGER NOT NULL,
    enqueued     INTEGER NOT NULL DEFAULT 0,
    entry_id     INTEGER NOT NULL DEFAULT 0,
    slave_id     TEXT    NOT NULL DEFAULT '',
    slot         INTEGER NOT NULL DEFAULT 0,
    hostname     TEXT    NOT NULL DEFAULT '',
    runs         INTEGER NOT NULL DEFAULT 0,
    submitted_at INTEGER NOT NULL,
    started_at   INTEGER NOT NULL DEFAULT 0,
    finished_at  INTEGER NOT NULL DEFAULT 0,
    exit_code    INTEGER,
    stdout_key   TEXT    NOT NULL DEFAULT '',
    stderr_key   TEXT    NOT NULL DEFAULT '',
    artifact_key TEXT    NOT NULL DEFAULT '',
    missing      TEXT    NOT NULL DEFAULT '',
    error        TEXT    NOT NULL DEFAULT '',
    UNIQUE (task_row, attempt)
);
CREATE UNIQUE INDEX attempts_lease ON attempts (lease);
CREATE INDEX attempts_job_state ON attempts (job_id, state);
CREATE INDEX attempts_feed ON attempts (state, enqueued, job_id, priority, id);
CREATE INDEX attempts_slave ON attempts (slave_id, state);

-- Runtime history per task description, for longest-first ordering.
CREATE TABLE durations (
    desc_hash   TEXT    NOT NULL PRIMARY KEY,
    description TEXT    NOT NULL,
    avg_ms      INTEGER NOT NULL,
    samples     INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE slaves (
    id              TEXT    NOT NULL PRIMARY KEY,
    hostname        TEXT    NOT NULL,
    slots           INTEGER NOT NULL,
    version         TEXT    NOT NULL DEFAULT '',
    state           TEXT    NOT NULL,
    cpus            INTEGER NOT NULL DEFAULT 0,
    memory_bytes    INTEGER NOT NULL DEFAULT 0,
    disk_free_bytes INTEGER NOT NULL DEFAULT 0,
    registered_at   INTEGER NOT NULL,
    last_heartbeat  INTEGER NOT NULL,
    ended_at        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX slaves_state ON slaves (state, last_heartbeat);

-- +goose Down
DROP TABLE slaves;
DROP TABLE durations;
DROP TABLE attempts;
DROP TABLE tasks;
DROP TABLE jobs;
