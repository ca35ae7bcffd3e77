package main

import (
	"context"
	"database/sql"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/store/sqlite"
)

// [master] retention_days: a job submitted 40 days ago is deleted, rows,
// logs and artifacts, when the master starts; last week's job stays whole.
func TestOldJobsDeleted(t *testing.T) {
	c := newCluster(t, 2)
	c.writeInputs(map[string]string{"fail": `mkdir -p out && echo kept > out/a.txt; echo "out $1"; echo "err $1" >&2; exit 3` + "\n"})
	var jobs []string
	for _, name := range []string{"old", "recent"} {
		hash := c.archive("fail", "ARG="+name)
		path := c.writeJob(name+".json", []jobTask{{IsolateHash: hash, Description: name, Globs: []string{"out/*"}}})
		if code, _, stderr := c.run("submit", "-n", name, path); code != 88 {
			t.Fatalf("submit %s: %d %s", name, code, stderr)
		}
		jobs = append(jobs, lastJob(t, c))
	}
	old, recent := jobs[0], jobs[1]
	outputs := func(job string) []string {
		var files []string
		filepath.WalkDir(filepath.Join(c.dataDir, "blobs", "blobs", "outputs"), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.Contains(p, string(filepath.Separator)+strings.ReplaceAll(job, ":", "_")+string(filepath.Separator)) {
				files = append(files, p)
			}
			return nil
		})
		return files
	}
	if n := len(outputs(old)); n != 3 {
		t.Fatalf("the old job has %d outputs, want stdout, stderr and artifacts", n)
	}
	c.stop()

	// Make the first job 40 days old, and its outputs too; the second 7 days.
	st, err := sqlite.Open(context.Background(), filepath.Join(c.dataDir, "dist_test.db"))
	if err != nil {
		t.Fatal(err)
	}
	db := st.DB()
	for job, age := range map[string]time.Duration{old: 40 * 24 * time.Hour, recent: 7 * 24 * time.Hour} {
		at := time.Now().Add(-age)
		if _, err := db.Exec(`UPDATE jobs SET submitted_at = ? WHERE id = ?`, at.UnixMilli(), job); err != nil {
			t.Fatal(err)
		}
		for _, f := range outputs(job) {
			os.Chtimes(f, at, at)
		}
	}
	st.Close()

	c.start(2) // retention runs once at start
	waitFor(t, 20*time.Second, "the old job to be deleted", func() bool {
		resp, err := http.Get(c.url + "/api/v1/jobs/" + old)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 404
	})
	if left := outputs(old); len(left) != 0 {
		t.Errorf("outputs of the deleted job left: %v", left)
	}
	var l protocol.AttemptList
	c.get("/api/v1/jobs/"+recent+"/tasks", &l)
	if len(l.Tasks) != 1 || l.Tasks[0].StdoutLink == "" || len(outputs(recent)) != 3 {
		t.Errorf("the recent job lost something: %+v, outputs %v", l.Tasks, outputs(recent))
	}
	st, err = sqlite.Open(context.Background(), filepath.Join(c.dataDir, "dist_test.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, table := range []string{"tasks", "attempts", "events"} {
		var n int
		if err := st.DB().QueryRow(`SELECT COUNT(*) FROM `+table+` WHERE job_id = ?`, old).Scan(&n); err != nil && err != sql.ErrNoRows {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%d rows of the deleted job left in %s", n, table)
		}
	}
}
