// Package storetest is the conformance suite every store.Store
// implementation runs (as river's riverdrivertest is for its drivers):
//
//	func TestStore(t *testing.T) {
//		storetest.Exercise(t, func(t *testing.T) store.Store { ... a new, empty store ... })
//	}
//
// It checks the contract written in internal/store's doc comments, method by
// method and error by error, through the interface only. It owns no store and
// must import no implementation.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"fusebox/internal/job"
	"fusebox/internal/store"
)

// Exercise runs the suite. open must return a new, empty store for each
// call and close it when t ends (closing twice must be harmless).
func Exercise(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(f *fx)
	}{
		{"InsertGet", testInsertGet},
		{"GetNotFound", testGetNotFound},
		{"Idempotency", testIdempotency},
		{"IdempotencyConcurrent", testIdempotencyConcurrent},
		{"QueueBound", testQueueBound},
		{"QueueBoundConcurrent", testQueueBoundConcurrent},
		{"List", testList},
		{"ListDefaultLimit", testListDefaultLimit},
		{"NamesAndPrefixes", testNamesAndPrefixes},
		{"ListQueued", testListQueued},
		{"ListActive", testListActive},
		{"ConstraintsKey", testConstraintsKey},
		{"QueueKeys", testQueueKeys},
		{"ListReady", testListReady},
		{"SetWaitReason", testSetWaitReason},
		{"NextNotBefore", testNextNotBefore},
		{"DeleteFinished", testDeleteFinished},
		{"CountByState", testCountByState},
		{"TransitionConflict", testTransitionConflict},
		{"TransitionConcurrent", testTransitionConcurrent},
		{"TransitionInvalid", testTransitionInvalid},
		{"Lifecycle", testLifecycle},
		{"AttemptOutcomes", testAttemptOutcomes},
		{"CancelRequested", testCancelRequested},
		{"DropAttempt", testDropAttempt},
		{"Fences", testFences},
		{"Logs", testLogs},
		{"EventAppendList", testEventAppendList},
		{"TransitionEvents", testTransitionEvents},
		{"EventRetention", testEventRetention},
		{"HostActions", testHostActions},
		{"AlertOutbox", testAlertOutbox},
		{"AlertRetention", testAlertRetention},
		{"WorkflowRuns", testWorkflowRuns},
		{"WorkflowRunRefs", testWorkflowRunRefs},
		{"WorkflowCache", testWorkflowCache},
		{"InstanceID", testInstanceID},
		{"CloseTwice", testCloseTwice},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(&fx{t: t, s: open(t), ctx: t.Context()})
		})
	}
}

// base is the suite's clock: a non-UTC zone and nanoseconds, which the store
// must keep (and return in UTC).
var base = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.FixedZone("CET", 3600))

// at is base plus d.
func at(d time.Duration) time.Time { return base.Add(d) }

// fx is one subtest's store with helpers that fail the test on error.
type fx struct {
	t   *testing.T
	s   store.Store
	ctx context.Context
}

// newJob is a minimal job to insert.
func newJob(id string, created time.Time) *job.Job {
	return &job.Job{ID: id, Spec: job.Spec{Image: "alpine:3.20", Command: []string{"true"}}, CreatedAt: created}
}

// insert inserts j with no queue bound.
func (f *fx) insert(j *job.Job) *job.Job {
	f.t.Helper()
	got, existed, err := f.s.JobInsert(f.ctx, store.JobInsertParams{Job: j})
	if err != nil || existed {
		f.t.Fatalf("JobInsert(%s) = existed %v, %v; want a new job", j.ID, existed, err)
	}
	return got
}

// move transitions id from one state to another at now; mods set the
// optional fields.
func (f *fx) move(id string, from, to job.State, now time.Time, mods ...func(*store.JobTransitionParams)) *job.Job {
	f.t.Helper()
	p := store.JobTransitionParams{ID: id, From: []job.State{from}, To: to, Reason: fmt.Sprintf("%s to %s", from, to), Now: now}
	for _, m := range mods {
		m(&p)
	}
	j, err := f.s.JobTransition(f.ctx, p)
	if err != nil {
		f.t.Fatalf("JobTransition(%s, %s -> %s): %v", id, from, to, err)
	}
	return j
}

// launch moves a queued job to launching on host as attempt n.
func (f *fx) launch(id, host string, n int, now time.Time) *job.Job {
	f.t.Helper()
	return f.move(id, job.StateQueued, job.StateLaunching, now, func(p *store.JobTransitionParams) {
		p.Host, p.SetAttempt = store.Ptr(host), store.Ptr(n)
	})
}

func (f *fx) get(id string) *job.Job {
	f.t.Helper()
	j, err := f.s.JobGetByID(f.ctx, id)
	if err != nil {
		f.t.Fatalf("JobGetByID(%s): %v", id, err)
	}
	return j
}

// absent fails unless id is unknown to the store.
func (f *fx) absent(id string) {
	f.t.Helper()
	if j, err := f.s.JobGetByID(f.ctx, id); !errors.Is(err, job.ErrNotFound) {
		f.t.Fatalf("JobGetByID(%s) = %+v, %v; want job.ErrNotFound", id, j, err)
	}
}

func (f *fx) transitions(id string) []job.Transition {
	f.t.Helper()
	ts, err := f.s.JobTransitionList(f.ctx, id)
	if err != nil {
		f.t.Fatalf("JobTransitionList(%s): %v", id, err)
	}
	return ts
}

func (f *fx) attempts(id string) []job.Attempt {
	f.t.Helper()
	as, err := f.s.AttemptList(f.ctx, id)
	if err != nil {
		f.t.Fatalf("AttemptList(%s): %v", id, err)
	}
	return as
}

func (f *fx) counts() map[job.State]int {
	f.t.Helper()
	c, err := f.s.JobCountByState(f.ctx)
	if err != nil {
		f.t.Fatalf("JobCountByState: %v", err)
	}
	for s, n := range c { // states with none may be absent
		if n == 0 {
			delete(c, s)
		}
	}
	return c
}

// checkJob fails unless got equals want, times compared as instants; every
// non-zero time in got must be in UTC.
func checkJob(t *testing.T, what string, want, got *job.Job) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: got nil job", what)
	}
	for name, tm := range map[string]time.Time{"CreatedAt": got.CreatedAt, "UpdatedAt": got.UpdatedAt,
		"NotBefore": got.NotBefore, "StartedAt": got.StartedAt, "FinishedAt": got.FinishedAt} {
		if !tm.IsZero() && tm.Location() != time.UTC {
			t.Errorf("%s: %s is in %v, want UTC", what, name, tm.Location())
		}
	}
	w, g := normJob(*want), normJob(*got)
	if !reflect.DeepEqual(w, g) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

func normJob(j job.Job) job.Job {
	for _, tm := range []*time.Time{&j.CreatedAt, &j.UpdatedAt, &j.NotBefore, &j.StartedAt, &j.FinishedAt} {
		*tm = tm.UTC() // also drops the monotonic reading
	}
	return j
}

// ids lists the IDs of jobs, in order.
func ids(jobs []*job.Job) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}

func checkIDs(t *testing.T, what string, jobs []*job.Job, err error, want ...string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if got := ids(jobs); !reflect.DeepEqual(got, want) && (len(got) > 0 || len(want) > 0) {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
}

func checkErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}
