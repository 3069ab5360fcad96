package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"time"

	"fusebox/internal/job"
	"fusebox/internal/store"
)

// queuedJob inserts a queued job with constraints, priority, image and
// NotBefore.
func (f *fx) queuedJob(id string, created time.Time, prio int, cons map[string]string, notBefore time.Time) *job.Job {
	f.t.Helper()
	j := newJob(id, created)
	j.Spec.Priority, j.Spec.Constraints, j.NotBefore = prio, cons, notBefore
	j.Spec.Image = "img-" + id
	return f.insert(j)
}

func (f *fx) queueKeys() []store.QueueKey {
	f.t.Helper()
	keys, err := f.s.QueueKeyList(f.ctx)
	if err != nil {
		f.t.Fatalf("QueueKeyList: %v", err)
	}
	return keys
}

func (f *fx) ready(p store.JobListReadyParams) []store.QueuedJob {
	f.t.Helper()
	js, err := f.s.JobListReady(f.ctx, p)
	if err != nil {
		f.t.Fatalf("JobListReady(%+v): %v", p, err)
	}
	return js
}

func queuedIDs(js []store.QueuedJob) []string {
	out := []string{}
	for _, j := range js {
		out = append(out, j.ID)
	}
	return out
}

func testConstraintsKey(f *fx) {
	a := store.ConstraintsKey(map[string]string{"zone": "a", "gpu": "yes"})
	b := store.ConstraintsKey(map[string]string{"gpu": "yes", "zone": "a"})
	if a != b || a == "" {
		f.t.Fatalf("ConstraintsKey of equal maps: %q and %q", a, b)
	}
	if k := store.ConstraintsKey(nil); k != "" || store.ConstraintsKey(map[string]string{}) != "" {
		f.t.Fatalf("ConstraintsKey(none) = %q, want \"\"", k)
	}
	// A value that looks like a second label stays one label.
	c := store.ConstraintsKey(map[string]string{"a": "1,b=2"})
	d := store.ConstraintsKey(map[string]string{"a": "1", "b": "2"})
	if c == d {
		f.t.Fatalf("ConstraintsKey confuses %q", c)
	}
}

func testQueueKeys(f *fx) {
	if keys := f.queueKeys(); len(keys) != 0 {
		f.t.Fatalf("QueueKeyList of an empty store = %+v", keys)
	}
	gpu := map[string]string{"gpu": "yes"}
	zone := map[string]string{"zone": "b", "gpu": "no"}
	f.queuedJob("a", at(0), 0, nil, time.Time{})
	f.queuedJob("b", at(1), 0, gpu, time.Time{})
	f.queuedJob("c", at(2), 0, gpu, at(time.Hour)) // waiting for a backoff: still counted
	f.queuedJob("d", at(3), 0, zone, time.Time{})
	f.queuedJob("e", at(4), 0, zone, time.Time{})
	want := map[string]store.QueueKey{
		"":                         {Key: "", Queued: 1},
		store.ConstraintsKey(gpu):  {Key: store.ConstraintsKey(gpu), Constraints: gpu, Queued: 2},
		store.ConstraintsKey(zone): {Key: store.ConstraintsKey(zone), Constraints: zone, Queued: 2},
	}
	check := func(what string) {
		f.t.Helper()
		keys := f.queueKeys()
		got := map[string]store.QueueKey{}
		for i, k := range keys {
			if i > 0 && keys[i-1].Key >= k.Key {
				f.t.Fatalf("%s: QueueKeyList not in key order: %+v", what, keys)
			}
			if len(k.Constraints) == 0 {
				k.Constraints = nil
			}
			got[k.Key] = k
		}
		if !reflect.DeepEqual(got, want) {
			f.t.Fatalf("%s: QueueKeyList = %+v, want %+v", what, got, want)
		}
	}
	check("after inserts")

	// Leaving the queue, coming back, and finishing keep the counts.
	f.launch("b", "h1", 1, at(time.Minute))
	f.launch("d", "h1", 1, at(time.Minute))
	f.move("e", job.StateQueued, job.StateCancelled, at(time.Minute))
	want[store.ConstraintsKey(gpu)] = store.QueueKey{Key: store.ConstraintsKey(gpu), Constraints: gpu, Queued: 1}
	delete(want, store.ConstraintsKey(zone)) // its last queued job left
	check("after leaving the queue")
	f.move("d", job.StateLaunching, job.StateQueued, at(2*time.Minute))
	want[store.ConstraintsKey(zone)] = store.QueueKey{Key: store.ConstraintsKey(zone), Constraints: zone, Queued: 1}
	check("after a requeue")
	f.move("d", job.StateQueued, job.StateQueued, at(3*time.Minute)) // queued -> queued changes nothing
	check("after queued -> queued")
}

func testListReady(f *fx) {
	now := at(time.Hour)
	gpu := map[string]string{"gpu": "yes"}
	key := store.ConstraintsKey(gpu)
	f.queuedJob("a", at(0), 0, gpu, time.Time{})
	f.queuedJob("b", at(1*time.Second), 5, gpu, time.Time{})
	f.queuedJob("c", at(2*time.Second), 5, gpu, time.Time{})
	f.queuedJob("d", at(0), 0, gpu, time.Time{})                           // same instant as a: after it, by ID
	f.queuedJob("e", at(0), -1, gpu, time.Time{})                          // lowest priority
	f.queuedJob("f", at(3*time.Second), 10, gpu, now.Add(time.Nanosecond)) // not yet
	f.queuedJob("g", at(4*time.Second), 10, gpu, now)                      // exactly now: ready
	f.queuedJob("x", at(0), 99, nil, time.Time{})                          // another key
	f.queuedJob("y", at(0), 99, map[string]string{"gpu": "no"}, time.Time{})
	f.queuedJob("i", at(6*time.Second), 9, gpu, time.Time{})
	f.launch("i", "h1", 1, at(time.Minute)) // not queued

	list := func(p store.JobListReadyParams, want ...string) {
		f.t.Helper()
		if got := queuedIDs(f.ready(p)); !reflect.DeepEqual(got, append([]string{}, want...)) {
			f.t.Fatalf("JobListReady(%+v) = %q, want %q", p, got, want)
		}
	}
	list(store.JobListReadyParams{Key: key, Now: now}, "g", "b", "c", "a", "d", "e")
	list(store.JobListReadyParams{Key: key, Now: now, Limit: 2}, "g", "b")
	list(store.JobListReadyParams{Key: key, Now: now.Add(time.Nanosecond)}, "f", "g", "b", "c", "a", "d", "e")
	list(store.JobListReadyParams{Key: "", Now: now}, "x")
	list(store.JobListReadyParams{Key: "nope", Now: now})

	// Paging with the cursor visits every ready job once, in order.
	var paged []string
	p := store.JobListReadyParams{Key: key, Now: now, Limit: 2}
	for pages := 0; ; pages++ {
		if pages > 10 {
			f.t.Fatal("JobListReady paging does not end")
		}
		page := f.ready(p)
		if len(page) == 0 {
			break
		}
		paged = append(paged, queuedIDs(page)...)
		p.After = &page[len(page)-1]
	}
	if want := []string{"g", "b", "c", "a", "d", "e"}; !reflect.DeepEqual(paged, want) {
		f.t.Fatalf("JobListReady paged = %q, want %q", paged, want)
	}

	// A requeued job with a backoff waits for it, and is light but whole.
	f.move("i", job.StateLaunching, job.StateQueued, at(2*time.Minute), func(p *store.JobTransitionParams) {
		p.NotBefore = store.Ptr(now.Add(time.Second))
	})
	list(store.JobListReadyParams{Key: key, Now: now, Limit: 1}, "g")
	js := f.ready(store.JobListReadyParams{Key: key, Now: now.Add(time.Second), Limit: 3})
	if got := queuedIDs(js); !reflect.DeepEqual(got, []string{"f", "g", "i"}) {
		f.t.Fatalf("JobListReady after the backoff = %q", got)
	}
	full := f.get("i")
	want := store.QueuedJob{ID: "i", Attempt: 1, Host: "h1", Image: "img-i", Key: key, Reason: full.Reason,
		Priority: 9, CreatedAt: full.CreatedAt, NotBefore: full.NotBefore}
	got := js[2]
	if !got.CreatedAt.Equal(want.CreatedAt) || !got.NotBefore.Equal(want.NotBefore) ||
		got.CreatedAt.Location() != time.UTC || got.NotBefore.Location() != time.UTC {
		f.t.Fatalf("JobListReady times = %v, %v; want %v, %v in UTC", got.CreatedAt, got.NotBefore, want.CreatedAt, want.NotBefore)
	}
	got.CreatedAt, got.NotBefore = want.CreatedAt, want.NotBefore
	if !reflect.DeepEqual(got, want) {
		f.t.Fatalf("JobListReady row = %+v, want %+v", got, want)
	}
}

func testSetWaitReason(f *fx) {
	now := at(time.Hour)
	gpu := map[string]string{"gpu": "yes"}
	key := store.ConstraintsKey(gpu)
	f.queuedJob("a", at(0), 0, gpu, time.Time{})
	f.queuedJob("b", at(1), 0, gpu, time.Time{})
	f.queuedJob("c", at(2), 0, gpu, now.Add(time.Minute)) // in backoff: keeps its reason
	f.queuedJob("d", at(3), 0, nil, time.Time{})          // another key
	f.queuedJob("e", at(4), 0, gpu, time.Time{})
	f.launch("e", "h1", 1, at(time.Minute)) // not queued
	before := map[string]*job.Job{}
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		before[id] = f.get(id)
	}

	set := func(reason string, now time.Time, want int) {
		f.t.Helper()
		n, err := f.s.JobSetWaitReason(f.ctx, store.JobSetWaitReasonParams{Key: key, Reason: reason, Now: now})
		if err != nil || n != want {
			f.t.Fatalf("JobSetWaitReason(%q) = %d, %v; want %d", reason, n, err, want)
		}
	}
	set("waiting for a host: h1 isolated", now, 2)
	for _, id := range []string{"a", "b"} {
		j := f.get(id)
		w := *before[id]
		w.Reason, w.UpdatedAt = "waiting for a host: h1 isolated", now
		checkJob(f.t, "after JobSetWaitReason: "+id, &w, j)
		if ts := f.transitions(id); len(ts) != 1 {
			f.t.Fatalf("JobSetWaitReason recorded a transition of %s: %+v", id, ts)
		}
	}
	for _, id := range []string{"c", "d", "e"} {
		checkJob(f.t, "untouched by JobSetWaitReason: "+id, before[id], f.get(id))
	}
	// The same reason again changes nothing; a new job gets it alone.
	set("waiting for a host: h1 isolated", now.Add(time.Second), 0)
	f.queuedJob("f", at(5), 0, gpu, time.Time{})
	set("waiting for a host: h1 isolated", now.Add(time.Second), 1)
	if j := f.get("a"); !j.UpdatedAt.Equal(now) {
		f.t.Fatalf("an unchanged reason moved UpdatedAt to %v", j.UpdatedAt)
	}
	// Shorter and longer reasons (both sides of the old one) replace it, a
	// limited number at a time.
	n, err := f.s.JobSetWaitReason(f.ctx, store.JobSetWaitReasonParams{Key: key, Reason: "waiting", Now: now, Limit: 2})
	if err != nil || n != 2 {
		f.t.Fatalf("JobSetWaitReason(Limit: 2) = %d, %v; want 2", n, err)
	}
	set("waiting", now, 1)
	set("waiting for a host: h1 isolated; h2 full", now, 3)
	// Once its backoff is over, c is ready and gets the reason too.
	set("waiting for a host: h1 isolated; h2 full", now.Add(time.Minute), 1)
	if j := f.get("c"); j.Reason != "waiting for a host: h1 isolated; h2 full" {
		f.t.Fatalf("reason of c = %q", j.Reason)
	}
	_, err = f.s.JobSetWaitReason(f.ctx, store.JobSetWaitReasonParams{Key: key, Reason: "x"})
	if err == nil || errors.Is(err, job.ErrNotFound) {
		f.t.Fatalf("JobSetWaitReason with no Now: %v, want an invalid-params error", err)
	}
}

func testNextNotBefore(f *fx) {
	now := at(time.Hour)
	next := func(now time.Time, want time.Time) {
		f.t.Helper()
		got, err := f.s.JobNextNotBefore(f.ctx, now)
		if err != nil || !got.Equal(want) || (!got.IsZero() && got.Location() != time.UTC) {
			f.t.Fatalf("JobNextNotBefore(%v) = %v, %v; want %v (UTC)", now, got, err, want)
		}
	}
	next(now, time.Time{})
	f.queuedJob("ready", at(0), 0, nil, time.Time{})
	f.queuedJob("past", at(0), 0, nil, now.Add(-time.Second))
	next(now, time.Time{})
	f.queuedJob("later", at(0), 0, nil, now.Add(time.Minute))
	f.queuedJob("soon", at(0), 0, map[string]string{"a": "b"}, now.Add(250*time.Millisecond))
	f.queuedJob("gone", at(0), 0, nil, now.Add(time.Millisecond))
	f.launch("gone", "h1", 1, at(time.Minute)) // no longer queued
	next(now, now.Add(250*time.Millisecond))
	next(now.Add(250*time.Millisecond), now.Add(time.Minute))
	next(now.Add(time.Minute), time.Time{})
}

func testDeleteFinished(f *fx) {
	old, young := at(0), at(24*time.Hour)
	cutoff := at(time.Hour)
	finish := func(id string, when time.Time, to job.State) {
		f.t.Helper()
		f.insert(newJob(id, old))
		if to == job.StateCancelled {
			f.move(id, job.StateQueued, to, when, func(p *store.JobTransitionParams) { p.FinishedAt = &when })
			return
		}
		f.launch(id, "h1", 1, when)
		f.move(id, job.StateLaunching, job.StateRunning, when)
		f.move(id, job.StateRunning, to, when, func(p *store.JobTransitionParams) { p.FinishedAt = &when })
		if err := f.s.LogsSet(f.ctx, id, job.Logs{Stdout: []byte("out " + id)}); err != nil {
			f.t.Fatal(err)
		}
	}
	for i, s := range []job.State{job.StateSucceeded, job.StateFailed, job.StateTimedOut, job.StateCancelled, job.StateLost} {
		finish(fmt.Sprintf("old%d", i), old.Add(time.Duration(i)*time.Second), s)
	}
	finish("young", young, job.StateSucceeded)
	finish("edge", cutoff, job.StateSucceeded) // exactly at the cutoff: kept
	f.insert(newJob("fenced", old))            // lost, and its container may still be there
	f.launch("fenced", "h1", 1, old)
	f.move("fenced", job.StateLaunching, job.StateLost, old, func(p *store.JobTransitionParams) {
		p.FinishedAt = &old
		p.Fence = &store.Fence{Host: "h1", JobID: "fenced", Attempt: 1, Container: job.ContainerName("fenced", 1), Reason: "lost"}
	})
	f.insert(newJob("queued", old))
	f.insert(newJob("running", old))
	f.launch("running", "h1", 1, old)
	f.move("running", job.StateLaunching, job.StateRunning, old)

	del := func(p store.JobDeleteFinishedParams, want int) {
		f.t.Helper()
		n, err := f.s.JobDeleteFinished(f.ctx, p)
		if err != nil || n != want {
			f.t.Fatalf("JobDeleteFinished(%+v) = %d, %v; want %d", p, n, err, want)
		}
	}
	del(store.JobDeleteFinishedParams{Before: cutoff, Limit: 2}, 2) // the oldest two
	f.absent("old0")
	f.absent("old1")
	f.get("old2")
	del(store.JobDeleteFinishedParams{Before: cutoff}, 3)
	del(store.JobDeleteFinishedParams{Before: cutoff}, 0)
	for i := range 5 {
		id := fmt.Sprintf("old%d", i)
		f.absent(id)
		if _, err := f.s.JobTransitionList(f.ctx, id); !errors.Is(err, job.ErrNotFound) {
			f.t.Fatalf("transitions of deleted %s: %v", id, err)
		}
		if _, err := f.s.AttemptList(f.ctx, id); !errors.Is(err, job.ErrNotFound) {
			f.t.Fatalf("attempts of deleted %s: %v", id, err)
		}
		if _, err := f.s.LogsGet(f.ctx, id); !errors.Is(err, job.ErrNotFound) {
			f.t.Fatalf("logs of deleted %s: %v", id, err)
		}
	}
	for _, id := range []string{"young", "edge", "queued", "running"} {
		f.get(id)
		if len(f.transitions(id)) == 0 {
			f.t.Fatalf("kept job %s lost its transitions", id)
		}
	}
	if _, err := f.s.LogsGet(f.ctx, "young"); err != nil {
		f.t.Fatalf("logs of a kept job: %v", err)
	}
	want := map[job.State]int{job.StateQueued: 1, job.StateRunning: 1, job.StateSucceeded: 2, job.StateLost: 1}
	if c := f.counts(); !reflect.DeepEqual(c, want) {
		f.t.Fatalf("counts after deleting = %v, want %v", c, want)
	}
	// Active and queued jobs are never deleted, however old; nor is a
	// fenced one until its fence is cleared.
	del(store.JobDeleteFinishedParams{Before: at(1000 * time.Hour)}, 2)
	f.get("queued")
	f.get("running")
	f.get("fenced")
	if err := f.s.FenceClear(f.ctx, store.FenceClearParams{Host: "h1", JobID: "fenced", Attempt: 1, Note: "removed"}); err != nil {
		f.t.Fatal(err)
	}
	del(store.JobDeleteFinishedParams{Before: at(1000 * time.Hour)}, 1)
	f.absent("fenced")
	if _, err := f.s.JobDeleteFinished(f.ctx, store.JobDeleteFinishedParams{}); err == nil {
		f.t.Fatal("JobDeleteFinished with no Before: no error")
	}
}
