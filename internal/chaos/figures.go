package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"fusebox/internal/api"
	"fusebox/internal/apiclient"
	"fusebox/internal/event"
	"fusebox/internal/job"
	"fusebox/internal/store"
)

// Figures are what one scenario did, counted from the API and from the
// engines' own events.
type Figures struct {
	Scenario string
	Fault    string // what was done, in a few words

	// Submissions, from the clients' side.
	Submitted  int
	Accepted   int
	Refused    map[string]int // by reason: the API's error code
	Unanswered int            // neither accepted nor refused within SubmitPatience

	// Jobs: the accepted ones (and a workflow's steps), by how they ended.
	Jobs        int
	Succeeded   int
	FailedOwn   int // failed or timed out by its own fault (job.Cause.Own)
	FailedFleet int // ended failed for the fleet's reasons (host faults past its attempts, no host)
	Cancelled   int
	Lost        int // ended lost, or accepted and not in the store
	Unfinished  int // not terminal when the drain ended
	Misjudged   int // ended otherwise than it was made to (a sound job failed, or a failing one did not)
	Strays      int // jobs in the store for a submission's key that are not the job it was answered with

	// Containers, from the engines' events.
	Attempts    int // launch attempts the store recorded
	Containers  int // containers created for the jobs
	DupAttempts int // attempts with more than one container created
	Unrecorded  int // containers of a job for no attempt the store recorded
	Overlaps    int // pairs of containers of one job alive at the same time
	Reruns      int // jobs with more than one container, in turn (failovers)

	// Submit-to-running: from the job's creation to its first running.
	S2RMax, S2RP99 time.Duration

	Breaker []string // each host's breaker path, e.g. "e1 C>O>H>C"

	Problems []string // the verdict's reasons; none: pass
	Took     time.Duration
	Slowest  string // the transitions of the job slowest to run, for the record
}

// Pass reports whether the scenario passed.
func (f *Figures) Pass() bool { return len(f.Problems) == 0 }

// Fail adds a reason the scenario failed.
func (f *Figures) Fail(format string, args ...any) {
	f.Problems = append(f.Problems, fmt.Sprintf(format, args...))
}

// Verdict adds the reasons of the rules every scenario must keep: lost 0,
// no two containers of one job at once, one container per attempt,
// accepted + refused = submitted, every accepted job terminal.
func (f *Figures) Verdict() {
	if f.Lost > 0 {
		f.Fail("%d jobs lost", f.Lost)
	}
	if f.Overlaps > 0 {
		f.Fail("%d times two containers of one job were alive at once", f.Overlaps)
	}
	if f.DupAttempts > 0 || f.Unrecorded > 0 || f.Strays > 0 {
		f.Fail("duplicates: %d attempts with two containers, %d containers of no recorded attempt, %d jobs twice for one submission", f.DupAttempts, f.Unrecorded, f.Strays)
	}
	if refused := sum(f.Refused); f.Accepted+refused != f.Submitted {
		f.Fail("accepted %d + refused %d != submitted %d (%d unanswered)", f.Accepted, refused, f.Submitted, f.Unanswered)
	}
	if f.Unfinished > 0 {
		f.Fail("%d accepted jobs not terminal", f.Unfinished)
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func (f *Figures) refused() string {
	n := sum(f.Refused)
	if n == 0 {
		return "0"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(f.Refused)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, f.Refused[k]))
	}
	return fmt.Sprintf("%d (%s)", n, strings.Join(parts, ", "))
}

func (f *Figures) verdict() string {
	if f.Pass() {
		return "PASS"
	}
	return "FAIL: " + strings.Join(f.Problems, "; ")
}

func (f *Figures) breaker() string {
	if len(f.Breaker) == 0 {
		return "none"
	}
	return strings.Join(f.Breaker, ", ")
}

func round(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(100 * time.Millisecond).String()
	}
}

// Line is the scenario's one line of figures and its verdict.
func (f *Figures) Line() string {
	return fmt.Sprintf("chaos %s: submitted %d, accepted %d, refused %s, unanswered %d | jobs %d: succeeded %d, failed (own) %d, failed (fleet) %d, cancelled %d, lost %d, unfinished %d, misjudged %d | containers %d for %d attempts: duplicates per attempt %d, per job %d (unrecorded attempt) + %d (twice for one key), alive at once %d, reruns %d | submit-to-running max %s p99 %s | breaker %s | %s | %s",
		f.Scenario, f.Submitted, f.Accepted, f.refused(), f.Unanswered,
		f.Jobs, f.Succeeded, f.FailedOwn, f.FailedFleet, f.Cancelled, f.Lost, f.Unfinished, f.Misjudged,
		f.Containers, f.Attempts, f.DupAttempts, f.Unrecorded, f.Strays, f.Overlaps, f.Reruns,
		round(f.S2RMax), round(f.S2RP99), f.breaker(), round(f.Took), f.verdict())
}

// Table writes the figures as a markdown table, one row per scenario.
func Table(w io.Writer, rows []*Figures) error {
	var b strings.Builder
	b.WriteString("| scenario | fault | submitted | accepted | refused (reason) | succeeded | failed (own) | failed (fleet) | lost | dup/attempt | dup/job | alive at once | reruns | s2r max | s2r p99 | breaker transitions | took | verdict |\n")
	b.WriteString("|---|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|---|\n")
	for _, f := range rows {
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %s | %d | %d | %d | %d | %d | %d | %d | %d | %s | %s | %s | %s | %s |\n",
			f.Scenario, f.Fault, f.Submitted, f.Accepted, f.refused(), f.Succeeded, f.FailedOwn, f.FailedFleet, f.Lost,
			f.DupAttempts, f.Unrecorded+f.Strays, f.Overlaps, f.Reruns, round(f.S2RMax), round(f.S2RP99), f.breaker(), round(f.Took), f.verdict())
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Record writes each scenario's line, and the path of its job slowest to
// run, as a fenced block to follow the table.
func Record(w io.Writer, rows []*Figures) error {
	var b strings.Builder
	b.WriteString("```\n")
	for _, f := range rows {
		b.WriteString(f.Line() + "\n")
	}
	for _, f := range rows {
		if f.Slowest != "" {
			fmt.Fprintf(&b, "\n%s, the slowest to run: %s\n", f.Scenario, f.Slowest)
		}
	}
	b.WriteString("```\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// Collect waits until every submission has its answer and every accepted
// job (and every step job of the workflow runs) has ended, or drain
// passes, then counts. It does not judge: call Verdict.
func (r *Rig) Collect(ctx context.Context, drain time.Duration) *Figures {
	r.loads.Wait()
	f := &Figures{Scenario: r.Name, Refused: map[string]int{}}
	r.mu.Lock()
	subs := append([]*Submission(nil), r.subs...)
	r.mu.Unlock()

	want := map[string]job.State{} // accepted job -> how it is meant to end
	keys := map[string]string{}    // idempotency key -> the job it was answered with
	for _, s := range subs {
		f.Submitted++
		switch {
		case s.JobID != "":
			f.Accepted++
			want[s.JobID] = s.Want
			keys[s.Key] = s.JobID
		case s.Refused != "":
			f.Refused[s.Refused]++
		default:
			f.Unanswered++
		}
	}

	// Drain: the queue empty and nothing launching or running.
	err := until(ctx, drain, "every job ended", func() (bool, error) {
		q, err := r.Client.Queue(ctx)
		return err == nil && q.Queued == 0 && q.Running == 0, nil
	})
	if err != nil {
		r.TB.Logf("chaos %s: %v", r.Name, err)
	}

	// Every job in the store: the accepted ones, the workflows' steps, and
	// any a submission made twice.
	all, err := r.listAll(ctx)
	if err != nil {
		f.Fail("listing the jobs: %v", err)
	}
	inStore := map[string]*job.Job{}
	for _, j := range all {
		inStore[j.ID] = j
		if k := j.Spec.IdempotencyKey; strings.HasPrefix(k, "chaos-") && keys[k] != j.ID {
			if _, ours := keys[k]; ours {
				f.Strays++
				r.TB.Logf("chaos %s: job %s for key %s, which was answered with %s", r.Name, j.ID, k, keys[k])
			}
		}
	}
	ids := slices.Collect(maps.Keys(want))
	if len(r.Runs()) > 0 {
		for id, j := range inStore {
			if _, ok := want[id]; !ok && !strings.HasPrefix(j.Spec.IdempotencyKey, "chaos-") {
				ids = append(ids, id) // a step's job
			}
		}
	}
	slices.Sort(ids)
	details := r.details(ctx, ids)

	var s2r []time.Duration
	var slowest *api.JobDetail
	var slowestS2R time.Duration
	for _, id := range ids {
		f.Jobs++
		d := details[id]
		if d == nil {
			f.Lost++
			r.TB.Logf("chaos %s: job %s was accepted and is not in the store", r.Name, id)
			continue
		}
		j := d.Job
		switch {
		case !j.State.Terminal():
			f.Unfinished++
			r.TB.Logf("chaos %s: job %s still %s: %s", r.Name, id, j.State, j.Reason)
		case j.State == job.StateSucceeded:
			f.Succeeded++
		case j.State == job.StateLost:
			f.Lost++
			r.TB.Logf("chaos %s: job %s lost: %s", r.Name, id, j.Reason)
		case j.State == job.StateCancelled:
			f.Cancelled++
		case j.Cause.Own():
			f.FailedOwn++
		default:
			f.FailedFleet++
			r.TB.Logf("chaos %s: job %s ended %s for the fleet (%s): %s", r.Name, id, j.State, j.Cause, j.Reason)
		}
		if w, ok := want[id]; ok && j.State.Terminal() && j.State != job.StateLost && j.State != w {
			f.Misjudged++
			r.TB.Logf("chaos %s: job %s meant to end %s ended %s (%s): %s", r.Name, id, w, j.State, j.Cause, j.Reason)
		}
		for _, t := range d.Transitions {
			if t.To == job.StateRunning {
				s2r = append(s2r, t.At.Sub(j.CreatedAt))
				if t.At.Sub(j.CreatedAt) > slowestS2R {
					slowest, slowestS2R = d, t.At.Sub(j.CreatedAt)
				}
				break
			}
		}
		f.Attempts += len(d.Attempts)
		recorded := 0
		for _, a := range d.Attempts {
			n := r.attempts.Count(id + "/" + strconv.Itoa(a.Number))
			recorded += n
			if n > 1 {
				f.DupAttempts++
				r.TB.Logf("chaos %s: job %s attempt %d: %d containers created", r.Name, id, a.Number, n)
			}
		}
		n := r.perJob.Count(id)
		f.Containers += n
		if n > recorded {
			f.Unrecorded += n - recorded
			r.TB.Logf("chaos %s: job %s: %d containers, %d of them for its %d recorded attempts", r.Name, id, n, recorded, len(d.Attempts))
		}
		if r.lives.Count(id) > 1 {
			f.Reruns++
		}
	}
	if slowest != nil {
		var b strings.Builder
		for _, t := range slowest.Transitions {
			fmt.Fprintf(&b, "\n  %s %s→%s on %s (attempt %d): %s", t.At.Format(time.StampMilli), t.From, t.To, t.Host, t.Attempt, t.Reason)
		}
		f.Slowest = fmt.Sprintf("job %s, %s to run:%s", slowest.Job.ID, round(slowestS2R), b.String())
		r.TB.Logf("chaos %s: the slowest to run: %s", r.Name, f.Slowest)
	}
	if len(s2r) > 0 {
		slices.Sort(s2r)
		f.S2RMax = s2r[len(s2r)-1]
		f.S2RP99 = s2r[max(0, (len(s2r)*99+99)/100-1)]
	}

	// A container whose death the engine's stream has not told yet counts
	// as alive: give the streams a moment before counting overlaps.
	_ = until(ctx, 10*time.Second, "the engines' streams settle", func() (bool, error) {
		return len(r.lives.Overlaps()) == 0, nil
	})
	for key, pairs := range r.lives.Overlaps() {
		for _, p := range pairs {
			f.Overlaps++
			r.TB.Logf("chaos %s: job %s: containers %.12s on %s (%s..%s) and %.12s on %s (%s..%s) alive at once", r.Name, key,
				p[0].ID, p[0].Engine, p[0].Started.Format(time.StampMilli), p[0].Died.Format(time.StampMilli),
				p[1].ID, p[1].Engine, p[1].Started.Format(time.StampMilli), p[1].Died.Format(time.StampMilli))
		}
	}

	b, err := r.breakerPaths(ctx)
	if err != nil {
		f.Fail("reading the breaker transitions: %v", err)
	}
	f.Breaker = b
	return f
}

// listAll pages through every job in the store.
func (r *Rig) listAll(ctx context.Context) ([]*job.Job, error) {
	var all []*job.Job
	before := ""
	for {
		page, err := r.Client.List(ctx, store.JobListParams{BeforeID: before, Limit: api.ListLimitMax})
		if err != nil {
			return all, err
		}
		all = append(all, page...)
		if len(page) < api.ListLimitMax {
			return all, nil
		}
		before = page[len(page)-1].ID
	}
}

// details gets each job's detail, a few at a time; a job not found is
// left out.
func (r *Rig) details(ctx context.Context, ids []string) map[string]*api.JobDetail {
	out := make(map[string]*api.JobDetail, len(ids))
	var mu sync.Mutex
	work := make(chan string)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for id := range work {
				var d *api.JobDetail
				for try := 0; try < 5; try++ {
					var err error
					d, err = r.Client.Get(ctx, id)
					if err == nil || errors.Is(err, job.ErrNotFound) {
						break
					}
					Hold(ctx, 200*time.Millisecond) // a transient error: try again
				}
				if d != nil {
					mu.Lock()
					out[id] = d
					mu.Unlock()
				}
			}
		})
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	return out
}

// breakerPaths reads every host breaker transition from /v1/events and
// gives each host's path, e.g. "e1 C>O>H>C" (closed, open, half-open;
// F forced-open, D disabled, M metrics-only).
func (r *Rig) breakerPaths(ctx context.Context) ([]string, error) {
	paths := map[string][]string{}
	err := r.Client.Events(ctx, apiclient.EventsParams{Types: []string{event.TypeHostBreaker}}, func(ev event.Event) error {
		var b event.Breaker
		if err := json.Unmarshal(ev.Data, &b); err != nil {
			return fmt.Errorf("event %d: %w", ev.Seq, err)
		}
		h := ev.Host
		if h == "" {
			h = b.Name
		}
		if len(paths[h]) == 0 {
			paths[h] = append(paths[h], abbrev(b.From))
		}
		paths[h] = append(paths[h], abbrev(b.To))
		return nil
	})
	var out []string
	for _, h := range slices.Sorted(maps.Keys(paths)) {
		out = append(out, fmt.Sprintf("%s %s (%d)", h, strings.Join(paths[h], ">"), len(paths[h])-1))
	}
	return out, err
}

func abbrev(state string) string {
	switch state {
	case "closed":
		return "C"
	case "open":
		return "O"
	case "half-open", "half_open":
		return "H"
	case "forced-open", "forced_open":
		return "F"
	case "disabled":
		return "D"
	case "metrics-only", "metrics_only":
		return "M"
	}
	return state
}
