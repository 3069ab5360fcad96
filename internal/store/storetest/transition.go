package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"fusebox/internal/job"
	"fusebox/internal/store"
)

// snapshot is a job with its transitions and attempts.
type snapshot struct {
	j  *job.Job
	ts []job.Transition
	as []job.Attempt
}

func (f *fx) snapshot(id string) snapshot {
	f.t.Helper()
	return snapshot{f.get(id), f.transitions(id), f.attempts(id)}
}

// unchanged fails unless the job, its transitions and its attempts are as
// they were in before.
func (f *fx) unchanged(what string, before snapshot) {
	f.t.Helper()
	after := f.snapshot(before.j.ID)
	checkJob(f.t, what+": job", before.j, after.j)
	if !reflect.DeepEqual(before.ts, after.ts) || !reflect.DeepEqual(before.as, after.as) {
		f.t.Fatalf("%s changed the history:\n got %+v %+v\nwant %+v %+v", what, after.ts, after.as, before.ts, before.as)
	}
}

func testTransitionConflict(f *fx) {
	f.insert(newJob("j", base))
	try := func(p store.JobTransitionParams, want error) {
		f.t.Helper()
		before := f.snapshot("j")
		p.ID, p.Now = "j", at(time.Minute)
		_, err := f.s.JobTransition(f.ctx, p)
		what := fmt.Sprintf("JobTransition(from %v, attempt %v, to %s)", p.From, p.ExpectAttempt, p.To)
		checkErr(f.t, what, err, want)
		f.unchanged(what, before)
	}
	try(store.JobTransitionParams{From: []job.State{job.StateLaunching}, To: job.StateRunning}, job.ErrConflict)
	try(store.JobTransitionParams{From: []job.State{job.StateRunning, job.StateLaunching}, To: job.StateCancelled}, job.ErrConflict)
	try(store.JobTransitionParams{From: []job.State{job.StateQueued}, ExpectAttempt: store.Ptr(1), To: job.StateLaunching,
		SetAttempt: store.Ptr(2), Host: store.Ptr("h1")}, job.ErrConflict)

	_, err := f.s.JobTransition(f.ctx, store.JobTransitionParams{ID: "nope", From: []job.State{job.StateQueued},
		To: job.StateLaunching, Now: base})
	checkErr(f.t, "JobTransition(unknown id)", err, job.ErrNotFound)

	// ExpectAttempt guards against a stale view of a retried job.
	f.move("j", job.StateQueued, job.StateLaunching, at(time.Second), func(p *store.JobTransitionParams) {
		p.ExpectAttempt, p.SetAttempt, p.Host = store.Ptr(0), store.Ptr(1), store.Ptr("h1")
	})
	try(store.JobTransitionParams{From: []job.State{job.StateLaunching}, ExpectAttempt: store.Ptr(2), To: job.StateRunning,
		ContainerID: store.Ptr("c9")}, job.ErrConflict)
	try(store.JobTransitionParams{From: []job.State{job.StateLaunching}, ExpectAttempt: store.Ptr(0), To: job.StateQueued}, job.ErrConflict)
	// Any one of From will do.
	j := f.move("j", job.StateLaunching, job.StateRunning, at(2*time.Second), func(p *store.JobTransitionParams) {
		p.From, p.ExpectAttempt = []job.State{job.StateQueued, job.StateLaunching}, store.Ptr(1)
	})
	if j.State != job.StateRunning || j.Attempt != 1 {
		f.t.Fatalf("after from [queued launching]: %+v", j)
	}
	// A finished job conflicts with every live From.
	f.move("j", job.StateRunning, job.StateSucceeded, at(3*time.Second))
	try(store.JobTransitionParams{From: []job.State{job.StateQueued, job.StateLaunching, job.StateRunning}, To: job.StateCancelled}, job.ErrConflict)
}

func testTransitionConcurrent(f *fx) {
	// N dispatchers race to launch the same job: exactly one wins, so
	// exactly one container is ever created for attempt 1.
	const n = 10
	f.insert(newJob("j", base))
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = f.s.JobTransition(f.ctx, store.JobTransitionParams{
				ID: "j", From: []job.State{job.StateQueued}, ExpectAttempt: store.Ptr(0), To: job.StateLaunching,
				Reason: fmt.Sprintf("placed by %d", i), Now: at(time.Second), Host: store.Ptr(fmt.Sprintf("h%d", i)), SetAttempt: store.Ptr(1),
			})
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			f.t.Fatalf("transitions %d and %d both won", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, job.ErrConflict):
			f.t.Fatalf("transition %d: %v, want nil or job.ErrConflict", i, err)
		}
	}
	if winner < 0 {
		f.t.Fatal("no transition won")
	}
	host := fmt.Sprintf("h%d", winner)
	if j := f.get("j"); j.State != job.StateLaunching || j.Host != host || j.Attempt != 1 {
		f.t.Fatalf("job = %+v, want launching on %s, attempt 1", j, host)
	}
	if ts := f.transitions("j"); len(ts) != 2 || ts[1].Reason != fmt.Sprintf("placed by %d", winner) {
		f.t.Fatalf("transitions = %+v, want the submission and the winner's", ts)
	}
	if as := f.attempts("j"); len(as) != 1 || as[0].Host != host {
		f.t.Fatalf("attempts = %+v, want one, on %s", as, host)
	}
}

func testTransitionInvalid(f *fx) {
	f.insert(newJob("j", base))
	before := f.snapshot("j")
	for _, p := range []store.JobTransitionParams{
		{ID: "j", From: []job.State{job.StateQueued}, To: "bogus", Now: base},
		{ID: "j", To: job.StateLaunching, Now: base}, // no From
	} {
		if _, err := f.s.JobTransition(f.ctx, p); err == nil {
			f.t.Fatalf("JobTransition(%+v) succeeded, want an error", p)
		}
		f.unchanged("an invalid transition", before)
	}
}

// testLifecycle walks a job through a host fault and a retry and checks the
// job, its transitions and its attempts at every step.
func testLifecycle(f *fx) {
	want := *f.insert(newJob("j", base))
	step := func(what string, got *job.Job) {
		f.t.Helper()
		checkJob(f.t, what, &want, got)
		checkJob(f.t, what+" (JobGetByID)", &want, f.get("j"))
	}
	var wantAs []job.Attempt
	attempts := func(what string) {
		f.t.Helper()
		got := f.attempts("j")
		if len(got) != len(wantAs) {
			f.t.Fatalf("%s: attempts = %+v, want %+v", what, got, wantAs)
		}
		for i := range got {
			g, w := got[i], wantAs[i]
			if g.StartedAt.Location() != time.UTC || (!g.FinishedAt.IsZero() && g.FinishedAt.Location() != time.UTC) {
				f.t.Errorf("%s: attempt %d times not in UTC: %+v", what, i, g)
			}
			g.StartedAt, g.FinishedAt = g.StartedAt.UTC(), g.FinishedAt.UTC()
			w.StartedAt, w.FinishedAt = w.StartedAt.UTC(), w.FinishedAt.UTC()
			if !reflect.DeepEqual(g, w) {
				f.t.Fatalf("%s: attempt %d = %+v, want %+v", what, i, g, w)
			}
		}
	}
	t1, t2, t3, t4, t5, t6 := at(1*time.Second), at(2*time.Second), at(3*time.Second), at(4*time.Second), at(5*time.Second), at(6*time.Second)

	// Placed on h1: attempt 1 starts.
	got, err := f.s.JobTransition(f.ctx, store.JobTransitionParams{ID: "j", From: []job.State{job.StateQueued},
		ExpectAttempt: store.Ptr(0), To: job.StateLaunching, Reason: "placed on h1", Now: t1,
		Host: store.Ptr("h1"), SetAttempt: store.Ptr(1)})
	if err != nil {
		f.t.Fatal(err)
	}
	want.State, want.Reason, want.UpdatedAt, want.Host, want.Attempt = job.StateLaunching, "placed on h1", t1, "h1", 1
	step("queued -> launching", got)
	wantAs = []job.Attempt{{JobID: "j", Number: 1, Host: "h1", StartedAt: t1}}
	attempts("queued -> launching")

	// Running: the attempt learns its container.
	got, err = f.s.JobTransition(f.ctx, store.JobTransitionParams{ID: "j", From: []job.State{job.StateLaunching},
		ExpectAttempt: store.Ptr(1), To: job.StateRunning, Reason: "container started", Now: t2,
		ContainerID: store.Ptr("c1"), StartedAt: store.Ptr(t2)})
	if err != nil {
		f.t.Fatal(err)
	}
	want.State, want.Reason, want.UpdatedAt, want.ContainerID, want.StartedAt = job.StateRunning, "container started", t2, "c1", t2
	step("launching -> running", got)
	wantAs[0].ContainerID = "c1"
	attempts("launching -> running")

	// Host fault: back to queued with a backoff; attempt 1 ends as host_fault.
	got, err = f.s.JobTransition(f.ctx, store.JobTransitionParams{ID: "j", From: []job.State{job.StateRunning},
		ExpectAttempt: store.Ptr(1), To: job.StateQueued, Reason: "host h1 unreachable", Now: t3,
		NotBefore: store.Ptr(t4), AttemptOutcome: "host_fault"})
	if err != nil {
		f.t.Fatal(err)
	}
	want.State, want.Reason, want.UpdatedAt, want.NotBefore = job.StateQueued, "host h1 unreachable", t3, t4
	step("running -> queued", got)
	wantAs[0].FinishedAt, wantAs[0].Outcome, wantAs[0].Error = t3, "host_fault", "host h1 unreachable"
	attempts("running -> queued")

	// Attempt 2 on h2; the container id is cleared until it is known.
	got, err = f.s.JobTransition(f.ctx, store.JobTransitionParams{ID: "j", From: []job.State{job.StateQueued},
		ExpectAttempt: store.Ptr(1), To: job.StateLaunching, Reason: "placed on h2", Now: t4,
		Host: store.Ptr("h2"), SetAttempt: store.Ptr(2), ContainerID: store.Ptr("")})
	if err != nil {
		f.t.Fatal(err)
	}
	want.State, want.Reason, want.UpdatedAt, want.Host, want.Attempt, want.ContainerID = job.StateLaunching, "placed on h2", t4, "h2", 2, ""
	step("queued -> launching (2)", got)
	wantAs = append(wantAs, job.Attempt{JobID: "j", Number: 2, Host: "h2", StartedAt: t4})
	attempts("queued -> launching (2)")

	got, err = f.s.JobTransition(f.ctx, store.JobTransitionParams{ID: "j", From: []job.State{job.StateLaunching},
		ExpectAttempt: store.Ptr(2), To: job.StateRunning, Reason: "container started", Now: t5,
		ContainerID: store.Ptr("c2"), StartedAt: store.Ptr(t5)})
	if err != nil {
		f.t.Fatal(err)
	}
	want.State, want.Reason, want.UpdatedAt, want.ContainerID, want.StartedAt = job.StateRunning, "container started", t5, "c2", t5
	step("launching -> running (2)", got)
	wantAs[1].ContainerID = "c2"
	attempts("launching -> running (2)")

	// Exits 3: failed; attempt 2 ends with the default outcome, the state.
	got, err = f.s.JobTransition(f.ctx, store.JobTransitionParams{ID: "j", From: []job.State{job.StateRunning},
		ExpectAttempt: store.Ptr(2), To: job.StateFailed, Reason: "exit code 3", Now: t6,
		ExitCode: store.Ptr(3), FinishedAt: store.Ptr(t6), Cause: job.CauseExit})
	if err != nil {
		f.t.Fatal(err)
	}
	want.State, want.Reason, want.UpdatedAt, want.ExitCode, want.FinishedAt = job.StateFailed, "exit code 3", t6, store.Ptr(3), t6
	want.Cause = job.CauseExit
	step("running -> failed", got)
	wantAs[1].FinishedAt, wantAs[1].Outcome, wantAs[1].Error = t6, "failed", "exit code 3"
	attempts("running -> failed")

	// Every transition, in order.
	type tr struct {
		from, to job.State
		reason   string
		host     string
		attempt  int
		at       time.Time
	}
	wantTs := []tr{
		{"", job.StateQueued, "submitted", "", 0, base},
		{job.StateQueued, job.StateLaunching, "placed on h1", "h1", 1, t1},
		{job.StateLaunching, job.StateRunning, "container started", "h1", 1, t2},
		{job.StateRunning, job.StateQueued, "host h1 unreachable", "h1", 1, t3},
		{job.StateQueued, job.StateLaunching, "placed on h2", "h2", 2, t4},
		{job.StateLaunching, job.StateRunning, "container started", "h2", 2, t5},
		{job.StateRunning, job.StateFailed, "exit code 3", "h2", 2, t6},
	}
	ts := f.transitions("j")
	if len(ts) != len(wantTs) {
		f.t.Fatalf("transitions = %+v, want %d", ts, len(wantTs))
	}
	for i, g := range ts {
		w := wantTs[i]
		if g.JobID != "j" || g.Seq <= 0 || (i > 0 && g.Seq <= ts[i-1].Seq) || g.From != w.from || g.To != w.to ||
			g.Reason != w.reason || g.Host != w.host || g.Attempt != w.attempt || !g.At.Equal(w.at) || g.At.Location() != time.UTC {
			f.t.Fatalf("transition %d = %+v, want %+v", i, g, w)
		}
	}
}

// testAttemptOutcomes checks how each way of leaving launching/running
// finishes the attempt, and that queued jobs have none.
func testAttemptOutcomes(f *fx) {
	run := func(id string) {
		f.insert(newJob(id, base))
		f.launch(id, "h1", 1, at(time.Second))
		f.move(id, job.StateLaunching, job.StateRunning, at(2*time.Second), func(p *store.JobTransitionParams) {
			p.ContainerID = store.Ptr("c-" + id)
		})
	}
	check := func(id string, want job.Attempt) {
		f.t.Helper()
		as := f.attempts(id)
		if len(as) != 1 {
			f.t.Fatalf("%s: attempts = %+v, want 1", id, as)
		}
		a := as[0]
		if a.JobID != id || a.Number != 1 || a.Host != "h1" || a.ContainerID != want.ContainerID ||
			!a.StartedAt.Equal(at(time.Second)) || !a.FinishedAt.Equal(want.FinishedAt) || a.Outcome != want.Outcome || a.Error != want.Error {
			f.t.Fatalf("%s: attempt = %+v, want %+v", id, a, want)
		}
	}

	run("ok")
	j := f.move("ok", job.StateRunning, job.StateSucceeded, at(3*time.Second), func(p *store.JobTransitionParams) {
		p.Reason, p.ExitCode = "exit code 0", store.Ptr(0)
		p.Outputs = []job.Output{{Path: "/out", Digest: "sha256:" + strings.Repeat("ab", 32), Size: 1024}}
	})
	if j.ExitCode == nil || *j.ExitCode != 0 {
		f.t.Fatalf("exit code = %v, want 0", j.ExitCode)
	}
	if got, err := f.s.JobGetByID(f.ctx, "ok"); err != nil || len(got.Outputs) != 1 || got.Outputs[0].Path != "/out" ||
		got.Outputs[0].Size != 1024 || got.Cause != job.CauseNone {
		f.t.Fatalf("outputs and cause as stored: %+v %v", got, err)
	}
	if in, err := f.s.ArtifactsInUse(f.ctx); err != nil || !in["sha256:"+strings.Repeat("ab", 32)] {
		f.t.Fatalf("ArtifactsInUse = %v, %v; want the job's output", in, err)
	}
	check("ok", job.Attempt{ContainerID: "c-ok", FinishedAt: at(3 * time.Second), Outcome: "succeeded", Error: "exit code 0"})

	run("neg")
	j = f.move("neg", job.StateRunning, job.StateFailed, at(3*time.Second), func(p *store.JobTransitionParams) {
		p.ExitCode = store.Ptr(-1)
	})
	if j.ExitCode == nil || *j.ExitCode != -1 {
		f.t.Fatalf("exit code = %v, want -1", j.ExitCode)
	}

	run("slow")
	f.move("slow", job.StateRunning, job.StateTimedOut, at(4*time.Second), func(p *store.JobTransitionParams) {
		p.Reason = "ran past 1s"
	})
	check("slow", job.Attempt{ContainerID: "c-slow", FinishedAt: at(4 * time.Second), Outcome: "timed_out", Error: "ran past 1s"})

	run("gone")
	f.move("gone", job.StateRunning, job.StateLost, at(5*time.Second), func(p *store.JobTransitionParams) {
		p.Reason, p.AttemptOutcome = "host h1 lost", "host_fault"
	})
	check("gone", job.Attempt{ContainerID: "c-gone", FinishedAt: at(5 * time.Second), Outcome: "host_fault", Error: "host h1 lost"})

	// Failing while launching (the image would not pull): no container.
	f.insert(newJob("pull", base))
	f.launch("pull", "h1", 1, at(time.Second))
	f.move("pull", job.StateLaunching, job.StateFailed, at(6*time.Second), func(p *store.JobTransitionParams) {
		p.Reason = "pull: not found"
	})
	check("pull", job.Attempt{FinishedAt: at(6 * time.Second), Outcome: "failed", Error: "pull: not found"})

	// Staying in launching/running does not finish the attempt, and setting
	// the attempt it is on does not start another.
	f.insert(newJob("stay", base))
	f.launch("stay", "h1", 1, at(time.Second))
	f.move("stay", job.StateLaunching, job.StateLaunching, at(2*time.Second), func(p *store.JobTransitionParams) {
		p.Reason, p.SetAttempt = "pulling image", store.Ptr(1)
	})
	check("stay", job.Attempt{})

	// Cancelled while queued: no attempt at all.
	f.insert(newJob("q", base))
	f.move("q", job.StateQueued, job.StateCancelled, at(time.Second))
	if as := f.attempts("q"); len(as) != 0 {
		f.t.Fatalf("attempts of a job cancelled while queued = %+v, want none", as)
	}

	// Cancelled while queued after a host fault: the finished attempt keeps
	// its outcome (only leaving launching/running finishes an attempt).
	f.insert(newJob("retry", base))
	f.launch("retry", "h1", 1, at(time.Second))
	f.move("retry", job.StateLaunching, job.StateQueued, at(2*time.Second), func(p *store.JobTransitionParams) {
		p.Reason, p.AttemptOutcome = "host h1 unreachable", "host_fault"
	})
	f.move("retry", job.StateQueued, job.StateCancelled, at(3*time.Second))
	check("retry", job.Attempt{FinishedAt: at(2 * time.Second), Outcome: "host_fault", Error: "host h1 unreachable"})
}
