package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/dist-test/dist_test/internal/httpserver"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
)

// A failed task's page row shows the tail of its logs for the first
// tailRows failed tasks of the page, reading at most tailReaders at once.
const (
	tailRows    = 50
	tailReaders = 8
)

// taskRow is one task on the job page: its latest attempt, and its
// earlier attempts as badges.
type taskRow struct {
	model.Attempt
	Tab                    model.TaskTab
	Flaky                  bool
	Attempts               []model.Attempt // all of them, the latest last
	Runtime                time.Duration
	Slow                   bool // ran over twice its expected runtime
	StdoutView, StderrView string
	StdoutLink, StderrLink string
	ArtifactLink           string
	Tails                  []logTail // of a failure
	Ended                  bool      // failed, timed out or infra failed: has tails to show
}

// jobQuery is what the job page's parameters ask for.
type jobQuery struct {
	model.TaskQuery
	Page     int // from 1
	LimitSet bool
}

// parseJobQuery reads ?status= (a tab), ?sort=, ?page= and ?limit=.
func parseJobQuery(q url.Values) (jobQuery, error) {
	jq := jobQuery{TaskQuery: model.TaskQuery{Tab: model.TaskTab(q.Get("status")), Order: model.TaskOrder(q.Get("sort")), Limit: jobPage}, Page: 1}
	if !jq.Tab.Valid() {
		return jq, fmt.Errorf("%w: status must be running, queued, failed, timed_out, flaky, passed, canceled or absent", model.ErrInvalid)
	}
	if !jq.Order.Valid() {
		return jq, fmt.Errorf("%w: sort must be runtime, state, name or absent", model.ErrInvalid)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > protocol.MaxPage {
			return jq, fmt.Errorf("%w: limit must be a number from 1 to %d", model.ErrInvalid, protocol.MaxPage)
		}
		jq.Limit, jq.LimitSet = n, true
	}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1_000_000 {
			return jq, fmt.Errorf("%w: page must be a number from 1", model.ErrInvalid)
		}
		jq.Page = n
	}
	jq.Offset = (jq.Page - 1) * jq.Limit
	return jq, nil
}

// url is the job page of job with jq changed by the arguments.
func (jq jobQuery) url(job string, tab model.TaskTab, order model.TaskOrder, page int) string {
	v := url.Values{"job_id": {job}}
	if tab != model.TabAll {
		v.Set("status", string(tab))
	}
	if order != model.OrderIndex {
		v.Set("sort", string(order))
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	if jq.LimitSet {
		v.Set("limit", strconv.Itoa(jq.Limit))
	}
	return "/job?" + v.Encode()
}

// Job shows a job: its figures, its buttons, tabs of its tasks by state
// with their counts, and one page of the tasks of a tab in an order
// (?status=, ?sort=, ?page=, ?limit=, default jobPage), so that the page
// of a job of 10,000 tasks stays small.
func (p *Pages) Job(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	jq, err := parseJobQuery(r.URL.Query())
	if err != nil {
		p.fail(w, r, err)
		return
	}
	id := r.URL.Query().Get("job_id")
	job, err := p.src.Job(ctx, id)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	now := p.src.Now()
	jq.Now = now
	tabs, err := p.src.TaskTabs(ctx, id)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	q := jq.TaskQuery
	q.Limit++ // one more tells whether there is a next page
	latest, err := p.src.TaskPage(ctx, id, q)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	next := ""
	if len(latest) > jq.Limit {
		latest = latest[:jq.Limit]
		next = jq.url(id, jq.Tab, jq.Order, jq.Page+1)
	}
	rows, err := p.taskRows(r, latest, now)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	var tabLinks, sortLinks []filterLink
	for _, t := range model.TaskTabs {
		text := map[model.TaskTab]string{model.TabAll: "all", model.TabTimedOut: "timed out"}[t]
		if text == "" {
			text = string(t)
		}
		tabLinks = append(tabLinks, filterLink{Text: text, URL: jq.url(id, t, jq.Order, 1), Count: tabs[t], Current: jq.Tab == t})
	}
	for _, o := range []model.TaskOrder{model.OrderIndex, model.OrderRuntime, model.OrderState, model.OrderName} {
		text := string(o)
		if o == model.OrderIndex {
			text = "task order"
		}
		sortLinks = append(sortLinks, filterLink{Text: text, URL: jq.url(id, jq.Tab, o, 1), Current: jq.Order == o})
	}
	elapsed := now.Sub(job.SubmittedAt)
	if !job.FinishedAt.IsZero() {
		elapsed = job.FinishedAt.Sub(job.SubmittedAt)
	}
	prev := ""
	if jq.Page > 1 {
		prev = jq.url(id, jq.Tab, jq.Order, jq.Page-1)
	}
	p.render(w, r, "job.html", map[string]any{
		"Job": job, "Rows": rows, "Tabs": tabLinks, "Sorts": sortLinks,
		"Active":  model.Active{Running: tabs[model.TabRunning], Queued: tabs[model.TabQueued]},
		"Elapsed": elapsed, "ETA": eta(job, elapsed), "Next": next, "Prev": prev,
		"First": jq.url(id, jq.Tab, jq.Order, 1), "Page": jq.Page,
		"From": jq.Offset + 1, "To": jq.Offset + len(rows), "Shown": tabs[jq.Tab],
		"Running": !job.Counts.Finished(), "Failures": tabs[model.TabFailed] + tabs[model.TabTimedOut] + tabs[model.TabCanceled],
	})
}

// eta estimates the time left of a running job from its pace so far; 0
// when it has ended or nothing has finished yet.
func eta(job model.Job, elapsed time.Duration) time.Duration {
	c := job.Counts
	if c.Finished() || c.FinishedGroups == 0 {
		return 0
	}
	return time.Duration(float64(elapsed) * float64(c.TotalGroups-c.FinishedGroups) / float64(c.FinishedGroups))
}

// taskRows makes the page's rows: the earlier attempts of the tasks that
// were retried, and the tails of the logs of the first failures.
func (p *Pages) taskRows(r *http.Request, latest []model.Attempt, now time.Time) ([]taskRow, error) {
	ctx := r.Context()
	var retried []int64
	for _, a := range latest {
		if a.Attempt > 0 {
			retried = append(retried, a.TaskRow)
		}
	}
	earlier, err := p.src.TaskAttempts(ctx, retried)
	if err != nil {
		return nil, err
	}
	byTask := make(map[int64][]model.Attempt)
	for _, a := range earlier {
		byTask[a.TaskRow] = append(byTask[a.TaskRow], a)
	}
	base := httpserver.BaseURL(r)
	rows := make([]taskRow, len(latest))
	for i, a := range latest {
		row := taskRow{Attempt: a, Tab: model.TabOf(a.State), Runtime: a.Duration(now)}
		row.Attempts = byTask[a.TaskRow]
		if len(row.Attempts) == 0 {
			row.Attempts = []model.Attempt{a}
		}
		for _, e := range row.Attempts {
			// As the store's flaky tab counts: any failure but a cancel.
			if e.State == model.Failed || e.State == model.TimedOut || e.State == model.InfraFailed {
				row.Flaky = a.State == model.Passed
			}
		}
		row.Slow = a.Expected > 0 && row.Runtime > 2*a.Expected
		if a.Outputs.Stdout != "" {
			row.StdoutLink = p.src.OutputLink(ctx, base, a.Outputs.Stdout)
			row.StdoutView = viewLink(a, "stdout")
		}
		if a.Outputs.Stderr != "" {
			row.StderrLink = p.src.OutputLink(ctx, base, a.Outputs.Stderr)
			row.StderrView = viewLink(a, "stderr")
		}
		row.ArtifactLink = p.src.OutputLink(ctx, base, a.Outputs.Artifacts)
		row.Ended = a.State == model.Failed || a.State == model.TimedOut || a.State == model.InfraFailed
		rows[i] = row
	}
	p.readTails(r, rows)
	return rows, nil
}

// readTails reads the log tails of the first tailRows failed rows, a few
// at once: the handler waits for all of them.
func (p *Pages) readTails(r *http.Request, rows []taskRow) {
	type job struct {
		row       *taskRow
		name, key string
	}
	var todo []job
	n := 0
	for i := range rows {
		row := &rows[i]
		if !row.Ended || n == tailRows {
			continue
		}
		n++
		if row.Outputs.Stderr != "" {
			todo = append(todo, job{row, "stderr", row.Outputs.Stderr})
		}
		if row.Outputs.Stdout != "" {
			todo = append(todo, job{row, "stdout", row.Outputs.Stdout})
		}
		row.Tails = make([]logTail, 0, 2)
	}
	tails := make([]logTail, len(todo))
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(tailReaders, len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				tails[i] = p.readTail(r.Context(), todo[i].name, todo[i].key)
			}
		}()
	}
	for i := range todo {
		work <- i
	}
	close(work)
	wg.Wait()
	for i, j := range todo {
		j.row.Tails = append(j.row.Tails, tails[i])
	}
}
