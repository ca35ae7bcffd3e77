package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/store"
)

// Planner is a store that describes its plan for a page of attempts.
type Planner interface {
	store.Store
	PagePlan(ctx context.Context, jobID string, p store.AttemptPage) ([]string, error)
}

// PagePlans writes two jobs of 10,000 tasks to s and returns its plans for
// a page of 500 of one of them: the first, one in the middle, and one in
// the middle of those in two states that every attempt of the job is in (a
// state that few are in may rightly be read another way: through
// attempts_job_state, sorting the few). The caller checks them in its
// database's terms.
func PagePlans(t *testing.T, s Planner) map[string][]string {
	t.Helper()
	ctx := context.Background()
	for _, id := range []string{"big", "other"} {
		j := model.NewJob{ID: id, User: "u"}
		for i := range 10_000 {
			j.Tasks = append(j.Tasks, model.NewTask{TaskID: fmt.Sprintf("%s.%d", hash, i), Index: i,
				Spec: model.TaskSpec{IsolateHash: hash, Description: fmt.Sprint("d", i)}, Priority: model.NormalBase - 1})
		}
		if err := s.CreateJob(ctx, j, time.UnixMilli(1_700_000_000_000)); err != nil {
			t.Fatal(err)
		}
	}
	after := &store.Cursor{Index: 5000, Attempt: 0}
	out := map[string][]string{}
	for name, p := range map[string]store.AttemptPage{
		"all":      {Limit: 500, After: after},
		"first":    {Limit: 500},
		"by state": {Limit: 500, After: after, States: []model.State{model.Queued, model.Running}},
	} {
		plan, err := s.PagePlan(ctx, "big", p)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("plan of a page (%s):\n%s", name, strings.Join(plan, "\n"))
		out[name] = plan
	}
	return out
}

// TaskPlanner is a store that describes its plan for a page of tasks.
type TaskPlanner interface {
	store.Store
	TaskPagePlan(ctx context.Context, jobID string, q model.TaskQuery) ([]string, error)
}

// TaskPagePlans writes jobs of 10,000 tasks to s and returns the plans
// for one job's first page of 500 tasks in task order, and for one in
// the middle.
func TaskPagePlans(t *testing.T, s TaskPlanner) map[string][]string {
	t.Helper()
	ctx := context.Background()
	// Other jobs' tasks are in the table as they would be: a plan for a
	// table of one job's tasks would rightly read it whole.
	for _, id := range []string{"bigtasks", "other1", "other2", "other3"} {
		j := model.NewJob{ID: id, User: "u"}
		for i := range 10_000 {
			j.Tasks = append(j.Tasks, model.NewTask{TaskID: fmt.Sprintf("%s.%d", hash, i), Index: i,
				Spec: model.TaskSpec{IsolateHash: hash, Description: fmt.Sprint("d", i)}, Priority: model.NormalBase - 1})
		}
		if err := s.CreateJob(ctx, j, time.UnixMilli(1_700_000_000_000)); err != nil {
			t.Fatal(err)
		}
	}
	out := map[string][]string{}
	for name, q := range map[string]model.TaskQuery{
		"first":  {Limit: 501},
		"middle": {Limit: 501, Offset: 5000},
	} {
		plan, err := s.TaskPagePlan(ctx, "bigtasks", q)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("plan of a page of tasks (%s):\n%s", name, strings.Join(plan, "\n"))
		out[name] = plan
	}
	return out
}
