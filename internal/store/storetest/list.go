package storetest

import (
	"fmt"
	"reflect"
	"time"

	"fusebox/internal/job"
	"fusebox/internal/store"
)

// listFixture inserts j0..j6 (j5 and j6 created at the same instant) and
// moves j1 to launching on h1, j2 to running on h2 and j3 to cancelled.
func listFixture(f *fx) {
	for i := range 7 {
		created := at(time.Duration(min(i, 5)) * time.Second)
		f.insert(newJob(fmt.Sprintf("j%d", i), created))
	}
	f.launch("j2", "h2", 1, at(time.Minute))
	f.move("j2", job.StateLaunching, job.StateRunning, at(time.Minute))
	f.launch("j1", "h1", 1, at(2*time.Minute))
	f.move("j3", job.StateQueued, job.StateCancelled, at(2*time.Minute))
}

func testList(f *fx) {
	listFixture(f)
	list := func(p store.JobListParams, want ...string) {
		f.t.Helper()
		jobs, err := f.s.JobList(f.ctx, p)
		checkIDs(f.t, fmt.Sprintf("JobList(%+v)", p), jobs, err, want...)
	}
	// Newest first; equal CreatedAt by ID desc.
	list(store.JobListParams{}, "j6", "j5", "j4", "j3", "j2", "j1", "j0")
	list(store.JobListParams{States: []job.State{job.StateQueued}}, "j6", "j5", "j4", "j0")
	list(store.JobListParams{States: []job.State{job.StateLaunching, job.StateRunning}}, "j2", "j1")
	list(store.JobListParams{States: []job.State{job.StateSucceeded}})
	list(store.JobListParams{Host: "h1"}, "j1")
	list(store.JobListParams{Host: "h2", States: []job.State{job.StateRunning}}, "j2")
	list(store.JobListParams{Host: "h2", States: []job.State{job.StateQueued}})
	list(store.JobListParams{Limit: 2}, "j6", "j5")
	list(store.JobListParams{BeforeID: "j6"}, "j5", "j4", "j3", "j2", "j1", "j0")
	list(store.JobListParams{BeforeID: "j0"})

	// Paging with the cursor visits every job once, in order.
	for _, p := range []store.JobListParams{
		{Limit: 3},
		{Limit: 1},
		{Limit: 2, States: []job.State{job.StateQueued}},
	} {
		all, err := f.s.JobList(f.ctx, store.JobListParams{States: p.States})
		if err != nil {
			f.t.Fatal(err)
		}
		var paged []*job.Job
		for pages := 0; ; pages++ {
			if pages > 10 {
				f.t.Fatalf("paging %+v does not end", p)
			}
			page, err := f.s.JobList(f.ctx, p)
			if err != nil {
				f.t.Fatalf("JobList(%+v): %v", p, err)
			}
			if len(page) > p.Limit {
				f.t.Fatalf("JobList(%+v) returned %d jobs", p, len(page))
			}
			if len(page) == 0 {
				break
			}
			paged = append(paged, page...)
			p.BeforeID = page[len(page)-1].ID
		}
		if !reflect.DeepEqual(ids(paged), ids(all)) {
			f.t.Fatalf("paging with %+v gave %q, want %q", p, ids(paged), ids(all))
		}
	}

	_, err := f.s.JobList(f.ctx, store.JobListParams{BeforeID: "nope"})
	checkErr(f.t, "JobList(BeforeID: unknown)", err, job.ErrNotFound)

	// The listed jobs are whole.
	jobs, err := f.s.JobList(f.ctx, store.JobListParams{Host: "h2"})
	if err != nil || len(jobs) != 1 {
		f.t.Fatalf("JobList(h2) = %v, %v", ids(jobs), err)
	}
	checkJob(f.t, "JobList(h2)[0]", f.get("j2"), jobs[0])
}

func testListDefaultLimit(f *fx) {
	for i := range 101 {
		f.insert(newJob(fmt.Sprintf("j%03d", i), at(time.Duration(i)*time.Millisecond)))
	}
	jobs, err := f.s.JobList(f.ctx, store.JobListParams{})
	if err != nil || len(jobs) != 100 || jobs[0].ID != "j100" {
		f.t.Fatalf("JobList({}) = %d jobs from %v, %v; want 100 from j100", len(jobs), ids(jobs[:min(1, len(jobs))]), err)
	}
	jobs, err = f.s.JobListQueued(f.ctx, store.JobListQueuedParams{Now: at(time.Hour)})
	if err != nil || len(jobs) != 100 || jobs[0].ID != "j000" {
		f.t.Fatalf("JobListQueued({}) = %d jobs from %v, %v; want 100 from j000", len(jobs), ids(jobs[:min(1, len(jobs))]), err)
	}
}

func testListQueued(f *fx) {
	now := at(time.Hour)
	add := func(id string, prio int, created time.Time, notBefore time.Time) {
		j := newJob(id, created)
		j.Spec.Priority = prio
		j.NotBefore = notBefore
		f.insert(j)
	}
	add("a", 0, at(0), time.Time{})
	add("b", 5, at(1*time.Second), time.Time{})
	add("c", 5, at(2*time.Second), time.Time{})
	add("d", 0, at(0), time.Time{}) // same instant as a: after it, by ID
	add("e", -1, at(0), time.Time{})
	add("f", 10, at(3*time.Second), now.Add(time.Nanosecond)) // not yet
	add("g", 10, at(4*time.Second), now)                      // exactly now: ready
	add("h", 3, at(5*time.Second), now.Add(-time.Minute))     // backoff over
	add("i", 9, at(6*time.Second), time.Time{})
	f.launch("i", "h1", 1, at(time.Minute)) // not queued

	queued := func(p store.JobListQueuedParams, want ...string) {
		f.t.Helper()
		jobs, err := f.s.JobListQueued(f.ctx, p)
		checkIDs(f.t, fmt.Sprintf("JobListQueued(%+v)", p), jobs, err, want...)
	}
	queued(store.JobListQueuedParams{Now: now}, "g", "b", "c", "h", "a", "d", "e")
	queued(store.JobListQueuedParams{Now: now, Limit: 2}, "g", "b")
	queued(store.JobListQueuedParams{Now: now.Add(time.Nanosecond)}, "f", "g", "b", "c", "h", "a", "d", "e")

	// A job re-queued with a backoff waits for it.
	f.move("i", job.StateLaunching, job.StateQueued, at(2*time.Minute), func(p *store.JobTransitionParams) {
		p.NotBefore = store.Ptr(now.Add(time.Second))
	})
	queued(store.JobListQueuedParams{Now: now, Limit: 1}, "g")
	queued(store.JobListQueuedParams{Now: now.Add(time.Second), Limit: 2}, "f", "g")
	queued(store.JobListQueuedParams{Now: now.Add(time.Second)}, "f", "g", "i", "b", "c", "h", "a", "d", "e")

	jobs, err := f.s.JobListQueued(f.ctx, store.JobListQueuedParams{Now: now, Limit: 1})
	if err != nil || len(jobs) != 1 {
		f.t.Fatalf("JobListQueued = %v, %v", ids(jobs), err)
	}
	checkJob(f.t, "JobListQueued[0]", f.get("g"), jobs[0])
}

func testListActive(f *fx) {
	jobs, err := f.s.JobListActive(f.ctx)
	checkIDs(f.t, "JobListActive(empty store)", jobs, err)
	listFixture(f)
	f.insert(newJob("j7", at(time.Hour)))
	f.launch("j7", "h1", 1, at(time.Hour))
	f.move("j7", job.StateLaunching, job.StateRunning, at(time.Hour))
	f.move("j7", job.StateRunning, job.StateSucceeded, at(time.Hour))
	// Oldest first, whatever the order they became active in.
	jobs, err = f.s.JobListActive(f.ctx)
	checkIDs(f.t, "JobListActive", jobs, err, "j1", "j2")
	checkJob(f.t, "JobListActive[0]", f.get("j1"), jobs[0])
}

func testCountByState(f *fx) {
	if c := f.counts(); len(c) != 0 {
		f.t.Fatalf("counts of an empty store = %v", c)
	}
	listFixture(f)
	want := map[job.State]int{job.StateQueued: 4, job.StateLaunching: 1, job.StateRunning: 1, job.StateCancelled: 1}
	if c := f.counts(); !reflect.DeepEqual(c, want) {
		f.t.Fatalf("counts = %v, want %v", c, want)
	}
}

// testNamesAndPrefixes: a name is held by one job that has not ended at a
// time (ErrNameInUse), and taken again once it ended; JobList finds jobs
// by name (newest first) and by id prefix.
func testNamesAndPrefixes(f *fx) {
	named := func(id, name string, created time.Time) *job.Job {
		j := newJob(id, created)
		j.Spec.Name = name
		return j
	}
	f.insert(named("ab1", "build", at(0)))
	_, _, err := f.s.JobInsert(f.ctx, store.JobInsertParams{Job: named("ab2", "build", at(time.Second))})
	checkErr(f.t, "JobInsert(name held by a queued job)", err, job.ErrNameInUse)
	f.absent("ab2")
	f.move("ab1", job.StateQueued, job.StateCancelled, at(2*time.Second))
	f.insert(named("ab3", "build", at(3*time.Second)))
	f.insert(named("cd1", "test", at(4*time.Second)))
	f.insert(newJob("abc", at(5*time.Second)))

	list := func(p store.JobListParams, want ...string) {
		f.t.Helper()
		jobs, err := f.s.JobList(f.ctx, p)
		checkIDs(f.t, fmt.Sprintf("JobList(%+v)", p), jobs, err, want...)
	}
	list(store.JobListParams{Name: "build"}, "ab3", "ab1")
	list(store.JobListParams{Name: "build", Limit: 1}, "ab3")
	list(store.JobListParams{Name: "nope"})
	list(store.JobListParams{IDPrefix: "ab"}, "abc", "ab3", "ab1")
	list(store.JobListParams{IDPrefix: "ab3"}, "ab3")
	list(store.JobListParams{IDPrefix: "c"}, "cd1")
	list(store.JobListParams{IDPrefix: "a*"})
	list(store.JobListParams{IDPrefix: "z"})
}
