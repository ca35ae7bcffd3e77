package sqlstore

import "strings"

// queries are the statements of the hot path (a task's feed, start and
// finish, a slave's heartbeat, the feeder's reads), as one dialect writes
// them. Each is prepared once, in New; the call sites use these very
// strings, which is how they find the prepared statement.
type queries struct {
	attemptByID, attemptByLease, attemptByIDLocked string
	// runByID and runByLease read an attempt with its task's row in one
	// statement, where no row locks are needed (SQLite).
	runByID, runByLease string
	taskLocked          string
	nextAttempt         string
	saveAttempt         string
	insertAttempt       string
	saveGroup           string
	event               string
	jobLocked, getJob   string
	saveJob             string
	upsertDuration      string
	slaveLocked         string
	getSlave            string
	heartbeat           string
	runningOn           string
	markEnqueued        string
	claim               string
	enqueuedState       string
	backlog             string
	waiting             string
	enqueued            string
	unenqueue           string
}

func newQueries(d Dialect) queries {
	attempts := "SELECT " + attemptCols + " "
	run := "SELECT " + attemptColsOnly + ", " + taskColsOf("t") + " " + attemptFrom + " "
	return queries{
		attemptByID:       attempts + "WHERE a.id = ?",
		attemptByLease:    attempts + "WHERE " + byLease,
		attemptByIDLocked: attempts + "WHERE a.id = ?" + d.ForUpdate,
		runByID:           run + "WHERE a.id = ?",
		runByLease:        run + "WHERE " + byLease,
		taskLocked:        "SELECT " + taskCols + " FROM tasks WHERE id = ?" + d.ForUpdate,
		nextAttempt:       attempts + "WHERE a.task_row = ? AND a.attempt = ?",
		saveAttempt: `UPDATE attempts SET state = ?, token = ?, lease = ?, priority = ?,
		enqueued = ?, entry_id = ?, slave_id = ?, slot = ?, hostname = ?, runs = ?, started_at = ?,
		finished_at = ?, exit_code = ?, stdout_key = ?, stderr_key = ?, artifact_key = ?, missing = ?,
		error = ?, hot_items = ?, cold_items = ?, hot_bytes = ?, cold_bytes = ?, fetch_ms = ?,
		cpu_ms = ?, peak_memory = ?, image_pull_ms = ?, avoid_slave = ?,
		hedge_token = ?, hedge_lease = ?, hedge_slave = ?, hedge_slot = ?, hedge_started_at = ? WHERE id = ?`,
		insertAttempt: `INSERT INTO attempts (task_row, task_idx, job_id, attempt, state, token,
		priority, submitted_at, error, avoid_slave) VALUES (?, (SELECT idx FROM tasks WHERE id = ?), ?, ?, ?, ?, ?, ?, ?, ?)`,
		saveGroup: `UPDATE tasks SET g_attempts = ?, g_finished = ?, g_succeeded = ?,
		g_failed = ?, g_timedout = ?, g_canceled = ?, g_retried = ?, g_latest = ?, max_retries = ?,
		g_cancel = ? WHERE id = ?`,
		event: `INSERT INTO events (at, kind, slave_id, job_id, task_id, attempt, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		jobLocked: `SELECT ` + jobCols + counterCols + ` FROM jobs WHERE id = ?` + d.ForUpdate,
		getJob:    `SELECT ` + jobCols + counterCols + ` FROM jobs WHERE id = ?`,
		saveJob: `UPDATE jobs SET finished_at = ?, canceled = ?, hot_items = ?, cold_items = ?,
		hot_bytes = ?, cold_bytes = ?, fetch_ms = ?, ` + counterSets + ` WHERE id = ?`,
		upsertDuration: d.UpsertDuration,
		slaveLocked:    `SELECT ` + slaveCols + ` FROM slaves s WHERE s.id = ?` + d.ForUpdate,
		getSlave:       `SELECT ` + slaveCols + ` FROM slaves s WHERE s.id = ?`,
		heartbeat:      `UPDATE slaves SET last_heartbeat = ? WHERE id = ?`,
		runningOn: attempts + `WHERE (a.slave_id = ? AND a.state = ?)
			OR (a.hedge_slave = ? AND a.state = ? AND a.hedge_lease IS NOT NULL) ORDER BY a.id`,
		markEnqueued: `UPDATE attempts SET enqueued = 1, entry_id = ?
			WHERE id = ? AND token = ? AND state = ?`,
		claim: `UPDATE attempts SET enqueued = 1, entry_id = 0
			WHERE id = ? AND token = ? AND state = ? AND enqueued = 0`,
		enqueuedState: `SELECT state FROM attempts WHERE id = ? AND token = ?`,
		// The owner is joined to the grouped rows, not to every attempt.
		backlog: `SELECT b.job_id, j.user, b.enqueued, b.oldest, b.n, b.retries FROM (
		SELECT job_id, 0 AS enqueued, MIN(id) AS oldest, COUNT(*) AS n,
		SUM(CASE WHEN priority <= ? THEN 1 ELSE 0 END) AS retries FROM attempts WHERE state = ? AND enqueued = 0 GROUP BY job_id
		UNION ALL SELECT job_id, 1, 0, COUNT(*), 0 FROM attempts WHERE state = ? AND enqueued = 1 GROUP BY job_id
		) b JOIN jobs j ON j.id = b.job_id`,
		waiting: attempts + `WHERE a.state = ? AND a.enqueued = 0 AND a.job_id = ?
		ORDER BY a.priority, a.id LIMIT ?`,
		enqueued:  attempts + `WHERE a.state = ? AND a.enqueued = 1 AND a.id > ? ORDER BY a.id LIMIT ?`,
		unenqueue: `UPDATE attempts SET enqueued = 0 WHERE id = ? AND entry_id = ? AND state = ?`,
	}
}

// hot lists the statements to prepare.
func (q queries) hot() []string {
	return []string{q.attemptByID, q.attemptByLease, q.attemptByIDLocked, q.runByID, q.runByLease,
		q.taskLocked, q.nextAttempt, q.saveAttempt, q.insertAttempt, q.saveGroup, q.event, q.jobLocked,
		q.getJob, q.saveJob, q.upsertDuration, q.slaveLocked, q.getSlave, q.heartbeat, q.runningOn,
		q.markEnqueued, q.claim, q.enqueuedState, q.backlog, q.waiting, q.enqueued, q.unenqueue,
		insertTasksSQL(insertBatch), insertAttemptsSQL(insertBatch), durationsSQL(insertBatch), taskRowsSQL(insertBatch)}
}

// taskColsOf is taskCols with each column qualified by alias.
func taskColsOf(alias string) string {
	cols := strings.Split(taskCols, ",")
	for i, c := range cols {
		cols[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}
