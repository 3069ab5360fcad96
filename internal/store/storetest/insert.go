package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"fusebox/internal/job"
	"fusebox/internal/store"
)

func testInsertGet(f *fx) {
	// A minimal job: State is forced to queued, UpdatedAt to CreatedAt, the
	// zero times stay zero.
	in := newJob("min", time.Now())
	in.State = job.StateRunning
	in.UpdatedAt = at(time.Hour)
	want := *in
	want.State, want.UpdatedAt = job.StateQueued, in.CreatedAt
	got := f.insert(in)
	checkJob(f.t, "JobInsert(min)", &want, got)
	checkJob(f.t, "JobGetByID(min)", &want, f.get("min"))

	// Every field, every spec field.
	full := &job.Job{
		ID: "full",
		Spec: job.Spec{
			Image:          "registry.example.com/team/tool:1.2",
			Command:        []string{"sh", "-c", "echo \"hi\" && exit 3"},
			Env:            map[string]string{"A": "1", "EMPTY": "", "UNICODE": "ünï"},
			Workdir:        "/work",
			Labels:         map[string]string{"team": "infra"},
			Constraints:    map[string]string{"gpu": "true", "zone": "b"},
			CPUs:           1.5,
			MemoryBytes:    256 << 20,
			Timeout:        job.Duration(90 * time.Second),
			Priority:       7,
			MaxAttempts:    4,
			RetryBackoff:   job.Duration(1500 * time.Millisecond),
			PullPolicy:     job.PullAlways,
			IdempotencyKey: "key-full",
		},
		State:           job.StateFailed,
		Reason:          "submitted by test",
		Attempt:         2,
		Host:            "h1",
		ContainerID:     "c1",
		ExitCode:        store.Ptr(0),
		NotBefore:       at(time.Minute),
		CreatedAt:       base,
		UpdatedAt:       at(2 * time.Hour),
		StartedAt:       at(time.Second),
		FinishedAt:      at(2 * time.Second),
		CancelRequested: true,
	}
	want = *full
	want.State, want.UpdatedAt = job.StateQueued, full.CreatedAt
	checkJob(f.t, "JobInsert(full)", &want, f.insert(full))
	checkJob(f.t, "JobGetByID(full)", &want, f.get("full"))

	// The submission is the first transition.
	ts := f.transitions("full")
	wantT := []job.Transition{{JobID: "full", Seq: 1, From: "", To: job.StateQueued, Reason: "submitted",
		Host: "h1", Attempt: 2, At: base.UTC()}}
	if len(ts) != 1 || !ts[0].At.Equal(base) || ts[0].At.Location() != time.UTC {
		f.t.Fatalf("transitions = %+v, want %+v", ts, wantT)
	}
	ts[0].At = base.UTC()
	if !reflect.DeepEqual(ts, wantT) {
		f.t.Fatalf("transitions = %+v, want %+v", ts, wantT)
	}
	if as := f.attempts("min"); len(as) != 0 {
		f.t.Fatalf("attempts of a new job = %+v, want none", as)
	}
	if c := f.counts(); !reflect.DeepEqual(c, map[job.State]int{job.StateQueued: 2}) {
		f.t.Fatalf("counts = %v, want 2 queued", c)
	}
}

func testGetNotFound(f *fx) {
	f.absent("nope")
	_, err := f.s.JobTransitionList(f.ctx, "nope")
	checkErr(f.t, "JobTransitionList(nope)", err, job.ErrNotFound)
	_, err = f.s.AttemptList(f.ctx, "nope")
	checkErr(f.t, "AttemptList(nope)", err, job.ErrNotFound)
}

func keyedJob(id, key string, created time.Time) *job.Job {
	j := newJob(id, created)
	j.Spec.Env = map[string]string{"A": "1", "B": "2", "C": "3"}
	j.Spec.Timeout = job.Duration(time.Minute)
	j.Spec.IdempotencyKey = key
	return j
}

func testIdempotency(f *fx) {
	first := f.insert(keyedJob("a", "k1", base))

	// Same spec (maps built afresh), another id and time: the first job.
	again := keyedJob("b", "k1", at(time.Second))
	again.Spec.Env = map[string]string{"C": "3", "B": "2", "A": "1"}
	got, existed, err := f.s.JobInsert(f.ctx, store.JobInsertParams{Job: again})
	if err != nil || !existed {
		f.t.Fatalf("JobInsert(same key, same spec) = existed %v, %v; want existed", existed, err)
	}
	checkJob(f.t, "JobInsert(same key, same spec)", first, got)
	f.absent("b")

	// Same key, another spec: ErrDuplicate, nothing inserted.
	other := keyedJob("c", "k1", at(2*time.Second))
	other.Spec.Env["B"] = "changed"
	_, _, err = f.s.JobInsert(f.ctx, store.JobInsertParams{Job: other})
	checkErr(f.t, "JobInsert(same key, other spec)", err, job.ErrDuplicate)
	f.absent("c")

	// The key is looked at before the bound: a retried submission gets its
	// job back even when the queue has filled since.
	got, existed, err = f.s.JobInsert(f.ctx, store.JobInsertParams{Job: keyedJob("d", "k1", at(3*time.Second)), MaxQueued: 1})
	if err != nil || !existed || got.ID != "a" {
		f.t.Fatalf("JobInsert(same key, full queue) = %+v, existed %v, %v; want job a, existed", got, existed, err)
	}
	// ... and after the job has finished.
	f.move("a", job.StateQueued, job.StateCancelled, at(4*time.Second))
	got, existed, err = f.s.JobInsert(f.ctx, store.JobInsertParams{Job: keyedJob("e", "k1", at(5*time.Second))})
	if err != nil || !existed || got.ID != "a" || got.State != job.StateCancelled {
		f.t.Fatalf("JobInsert(same key, finished job) = %+v, existed %v, %v; want cancelled job a", got, existed, err)
	}

	// Another key, and no key at all (twice, same spec): new jobs.
	f.insert(keyedJob("f", "k2", at(6*time.Second)))
	f.insert(keyedJob("g", "", at(7*time.Second)))
	f.insert(keyedJob("h", "", at(8*time.Second)))
	if c := f.counts(); !reflect.DeepEqual(c, map[job.State]int{job.StateQueued: 3, job.StateCancelled: 1}) {
		f.t.Fatalf("counts = %v, want 3 queued, 1 cancelled", c)
	}
}

func testIdempotencyConcurrent(f *fx) {
	const n = 10
	var wg sync.WaitGroup
	start := make(chan struct{})
	type result struct {
		j       *job.Job
		existed bool
		err     error
	}
	results := make([]result, n)
	for i := range n {
		wg.Go(func() {
			<-start
			j, existed, err := f.s.JobInsert(f.ctx, store.JobInsertParams{Job: keyedJob(fmt.Sprintf("r%02d", i), "race", at(time.Duration(i)))})
			results[i] = result{j, existed, err}
		})
	}
	close(start)
	wg.Wait()
	created := 0
	for i, r := range results {
		if r.err != nil {
			f.t.Fatalf("insert %d: %v", i, r.err)
		}
		if !r.existed {
			created++
		}
		if r.j.ID != results[0].j.ID {
			f.t.Fatalf("insert %d returned job %s, insert 0 returned %s", i, r.j.ID, results[0].j.ID)
		}
	}
	if created != 1 {
		f.t.Fatalf("%d inserts created a job, want exactly 1", created)
	}
	if c := f.counts(); c[job.StateQueued] != 1 {
		f.t.Fatalf("counts = %v, want 1 queued", c)
	}
}

func testQueueBound(f *fx) {
	insert := func(id string, max int) error {
		_, _, err := f.s.JobInsert(f.ctx, store.JobInsertParams{Job: newJob(id, base), MaxQueued: max})
		return err
	}
	refused := func(id string, max int) {
		f.t.Helper()
		checkErr(f.t, "JobInsert("+id+") past the bound", insert(id, max), job.ErrQueueFull)
		f.absent(id)
		_, err := f.s.JobTransitionList(f.ctx, id)
		checkErr(f.t, "JobTransitionList("+id+") after a refused insert", err, job.ErrNotFound)
	}
	for i := range 3 {
		if err := insert(fmt.Sprintf("q%d", i), 3); err != nil {
			f.t.Fatalf("insert %d of 3: %v", i, err)
		}
	}
	refused("q3", 3)
	if c := f.counts(); !reflect.DeepEqual(c, map[job.State]int{job.StateQueued: 3}) {
		f.t.Fatalf("counts = %v, want 3 queued", c)
	}

	// Launching, running and finished jobs do not count.
	f.launch("q0", "h1", 1, at(time.Second))
	if err := insert("q3", 3); err != nil {
		f.t.Fatalf("insert after one job left the queue: %v", err)
	}
	refused("q4", 3)
	f.move("q0", job.StateLaunching, job.StateRunning, at(2*time.Second))
	refused("q4", 3)
	f.move("q1", job.StateQueued, job.StateCancelled, at(3*time.Second))
	if err := insert("q4", 3); err != nil {
		f.t.Fatalf("insert after a job was cancelled: %v", err)
	}

	// 0 is unbounded; a bound below the queue refuses.
	for _, id := range []string{"u0", "u1"} {
		if err := insert(id, 0); err != nil {
			f.t.Fatalf("unbounded insert %s: %v", id, err)
		}
	}
	refused("q5", 2)
	if c := f.counts(); !reflect.DeepEqual(c, map[job.State]int{job.StateQueued: 5, job.StateRunning: 1, job.StateCancelled: 1}) {
		f.t.Fatalf("counts = %v, want 5 queued, 1 running, 1 cancelled", c)
	}
}

func testQueueBoundConcurrent(f *fx) {
	const n, bound = 20, 5
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			_, _, errs[i] = f.s.JobInsert(f.ctx, store.JobInsertParams{Job: newJob(fmt.Sprintf("c%02d", i), base), MaxQueued: bound})
		})
	}
	close(start)
	wg.Wait()
	ok, full := 0, 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, job.ErrQueueFull):
			full++
		default:
			f.t.Fatalf("insert %d: %v", i, err)
		}
	}
	if ok != bound || full != n-bound {
		f.t.Fatalf("%d accepted, %d refused; want %d, %d", ok, full, bound, n-bound)
	}
	if c := f.counts(); !reflect.DeepEqual(c, map[job.State]int{job.StateQueued: bound}) {
		f.t.Fatalf("counts = %v, want %d queued", c, bound)
	}
}
