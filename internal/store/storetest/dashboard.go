package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/model"
)

// testDashboard: the pages' queries select jobs by user, state and id
// prefix; count a job's tasks per tab by their latest attempts; page them
// in each order; and follow one test across jobs.
func testDashboard(t *testing.T, h *harness) {
	h.job("d1", 8, 1)
	pass := func(i int, entry uint64) { h.finish(h.start("d1", taskID(i), entry).Lease, 0, false) }
	fail := func(i int, entry uint64, timedOut bool) { h.finish(h.start("d1", taskID(i), entry).Lease, 1, timedOut) }
	pass(0, 1)
	fail(1, 2, false) // flaky: fails, then passes
	pass(1, 3)
	fail(2, 4, false) // fails twice: failed for good
	fail(2, 5, false)
	fail(3, 6, true) // times out twice
	fail(3, 7, true)
	h.start("d1", taskID(4), 8) // running; 5, 6 and 7 wait
	h.tick()

	bob := model.NewJob{ID: "d2", User: "bob"}
	for i := range 2 {
		bob.Tasks = append(bob.Tasks, model.NewTask{TaskID: taskID(i), Index: i, Priority: model.NormalBase,
			Spec: model.TaskSpec{IsolateHash: hash, Description: fmt.Sprintf("test-%d", i), Timeout: time.Minute}})
	}
	if err := h.s.CreateJob(h.ctx, bob, h.tick()); err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.CancelJob(h.ctx, "d2", h.tick()); err != nil {
		t.Fatal(err)
	}

	// Jobs by filter.
	for _, tc := range []struct {
		f    model.JobFilter
		want string
	}{
		{model.JobFilter{}, "[d2 d1]"},
		{model.JobFilter{User: "alice"}, "[d1]"},
		{model.JobFilter{User: "carol"}, "[]"},
		{model.JobFilter{State: model.JobRunning}, "[d1]"},
		{model.JobFilter{State: model.JobFailed}, "[d2 d1]"},
		{model.JobFilter{State: model.JobCanceled}, "[d2]"},
		{model.JobFilter{State: model.JobPassed}, "[]"},
		{model.JobFilter{IDPrefix: "d1"}, "[d1]"},
		{model.JobFilter{IDPrefix: "%"}, "[]"},
		{model.JobFilter{IDPrefix: "_1"}, "[]"},
		{model.JobFilter{Limit: 1}, "[d2]"},
		{model.JobFilter{Since: h.now.Add(time.Hour)}, "[]"},
	} {
		jobs, err := h.s.FindJobs(h.ctx, tc.f)
		ids := []string{}
		for _, j := range jobs {
			ids = append(ids, j.ID)
		}
		if err != nil || fmt.Sprint(ids) != tc.want {
			t.Errorf("FindJobs(%+v) = %v, %v; want %s", tc.f, ids, err, tc.want)
		}
	}
	_, err := h.s.FindJobs(h.ctx, model.JobFilter{State: "bogus"})
	wantErr(t, err, model.ErrInvalid, "jobs in an unknown state")

	active, err := h.s.ActiveTasks(h.ctx, []string{"d1", "d2", "nope"})
	if err != nil || len(active) != 1 || active["d1"] != (model.Active{Running: 1, Queued: 3}) {
		t.Errorf("ActiveTasks = %v, %v", active, err)
	}

	// Tabs count the tasks by their latest attempt.
	tabs, err := h.s.TaskTabs(h.ctx, "d1")
	want := model.TabCounts{model.TabAll: 8, model.TabPassed: 2, model.TabFlaky: 1, model.TabFailed: 1,
		model.TabTimedOut: 1, model.TabRunning: 1, model.TabQueued: 3}
	if err != nil || fmt.Sprint(tabs) != fmt.Sprint(want) {
		t.Errorf("TaskTabs(d1) = %v, %v; want %v", tabs, err, want)
	}
	if tabs, err := h.s.TaskTabs(h.ctx, "d2"); err != nil || tabs[model.TabCanceled] != 2 || tabs[model.TabAll] != 2 {
		t.Errorf("TaskTabs(d2) = %v, %v", tabs, err)
	}
	_, err = h.s.TaskTabs(h.ctx, "nope")
	wantErr(t, err, model.ErrNotFound, "tabs of an unknown job")

	// Pages of tasks, each its latest attempt, in each order.
	page := func(q model.TaskQuery) string {
		t.Helper()
		got, err := h.s.TaskPage(h.ctx, "d1", q)
		if err != nil {
			t.Fatalf("TaskPage(%+v): %v", q, err)
		}
		s := ""
		for _, a := range got {
			s += fmt.Sprintf("%d.%d ", a.Index, a.Attempt)
		}
		return s
	}
	later := h.now.Add(time.Hour)
	for _, tc := range []struct {
		q    model.TaskQuery
		want string
	}{
		{model.TaskQuery{}, "0.0 1.1 2.1 3.1 4.0 5.0 6.0 7.0 "},
		{model.TaskQuery{Limit: 3}, "0.0 1.1 2.1 "},
		{model.TaskQuery{Limit: 3, Offset: 6}, "6.0 7.0 "},
		{model.TaskQuery{Limit: 3, Offset: 9}, ""},
		{model.TaskQuery{Tab: model.TabFailed}, "2.1 "},
		{model.TaskQuery{Tab: model.TabTimedOut}, "3.1 "},
		{model.TaskQuery{Tab: model.TabFlaky}, "1.1 "},
		{model.TaskQuery{Tab: model.TabPassed}, "0.0 1.1 "},
		{model.TaskQuery{Tab: model.TabQueued, Limit: 2, Offset: 1}, "6.0 7.0 "},
		{model.TaskQuery{Tab: model.TabCanceled}, ""},
		{model.TaskQuery{Order: model.OrderState}, "2.1 3.1 4.0 5.0 6.0 7.0 0.0 1.1 "},
		{model.TaskQuery{Order: model.OrderName, Limit: 2}, "0.0 1.1 "},
		{model.TaskQuery{Order: model.OrderRuntime, Now: later, Limit: 1}, "4.0 "},
	} {
		if got := page(tc.q); got != tc.want {
			t.Errorf("TaskPage(%+v) = %q, want %q", tc.q, got, tc.want)
		}
	}
	_, err = h.s.TaskPage(h.ctx, "d1", model.TaskQuery{Tab: "bogus"})
	wantErr(t, err, model.ErrInvalid, "a page of an unknown tab")
	_, err = h.s.TaskPage(h.ctx, "nope", model.TaskQuery{})
	wantErr(t, err, model.ErrNotFound, "a page of an unknown job")

	flaky, _ := h.s.TaskPage(h.ctx, "d1", model.TaskQuery{Tab: model.TabFlaky})
	both, err := h.s.TaskAttempts(h.ctx, []int64{flaky[0].TaskRow})
	if err != nil || len(both) != 2 || both[0].State != model.Failed || both[1].State != model.Passed || both[1].Timeout != time.Minute {
		t.Errorf("TaskAttempts of the flaky task = %+v, %v", both, err)
	}

	// One test across jobs, newest first.
	runs, err := h.s.TestRuns(h.ctx, "test-1", 100)
	got := ""
	for _, a := range runs {
		got += fmt.Sprintf("%s:%d:%s ", a.JobID, a.Attempt, a.State)
	}
	if err != nil || got != "d2:0:canceled d1:1:passed d1:0:failed " {
		t.Errorf("TestRuns(test-1) = %q, %v", got, err)
	}
	if runs, err := h.s.TestRuns(h.ctx, "test-1", 1); err != nil || len(runs) != 1 || runs[0].JobID != "d2" {
		t.Errorf("TestRuns(test-1, 1) = %+v, %v", runs, err)
	}
	if runs, err := h.s.TestRuns(h.ctx, "test-", 100); err != nil || len(runs) != 0 {
		t.Errorf("TestRuns of a prefix = %+v, %v", runs, err)
	}
	ft, err := h.s.FlakyTests(h.ctx, time.Time{}, 10)
	if err != nil || len(ft) != 1 || ft[0].Description != "test-1" || ft[0].Flaky != 1 || ft[0].Last.IsZero() {
		t.Errorf("FlakyTests = %+v, %v", ft, err)
	}
	if ft, err := h.s.FlakyTests(h.ctx, h.now.Add(time.Hour), 10); err != nil || len(ft) != 0 {
		t.Errorf("FlakyTests of the future = %+v, %v", ft, err)
	}
}
