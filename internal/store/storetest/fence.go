package storetest

import (
	"strings"
	"time"

	"fusebox/internal/job"
	"fusebox/internal/store"
)

// testDropAttempt: a launch that never reached its host is undone, so the
// attempt number counts only launches that reached a host.
func testDropAttempt(f *fx) {
	f.insert(newJob("j", base))
	f.launch("j", "dead", 1, at(time.Second))
	j := f.move("j", job.StateLaunching, job.StateQueued, at(2*time.Second), func(p *store.JobTransitionParams) {
		p.DropAttempt = true
	})
	if j.Attempt != 0 || j.Host != "dead" {
		f.t.Fatalf("after DropAttempt: attempt %d host %q, want attempt 0 (host kept as the last tried)", j.Attempt, j.Host)
	}
	if as := f.attempts("j"); len(as) != 0 {
		f.t.Fatalf("attempts after DropAttempt: %+v, want none", as)
	}
	ts := f.transitions("j")
	if last := ts[len(ts)-1]; last.To != job.StateQueued || last.Attempt != 0 {
		f.t.Fatalf("last transition %+v", last)
	}
	// The next launch is attempt 1 again, on another host.
	f.launch("j", "h2", 1, at(3*time.Second))
	if as := f.attempts("j"); len(as) != 1 || as[0].Number != 1 || as[0].Host != "h2" {
		f.t.Fatalf("attempts %+v", as)
	}
	// Not valid when not leaving launching.
	f.move("j", job.StateLaunching, job.StateRunning, at(4*time.Second))
	before := f.snapshot("j")
	_, err := f.s.JobTransition(f.ctx, store.JobTransitionParams{ID: "j", From: []job.State{job.StateRunning},
		To: job.StateQueued, Now: at(5 * time.Second), DropAttempt: true})
	if err == nil {
		f.t.Fatal("DropAttempt from running: no error")
	}
	f.unchanged("DropAttempt from running", before)
}

// testFences: a fence is added with the transition that leaves a container
// behind, listed by host, and cleared with a note on the attempt.
func testFences(f *fx) {
	for _, id := range []string{"a", "b"} {
		f.insert(newJob(id, base))
		f.launch(id, "h1", 1, at(time.Second))
	}
	fence := func(id string) func(*store.JobTransitionParams) {
		return func(p *store.JobTransitionParams) {
			p.Fence = &store.Fence{Host: "h1", JobID: id, Attempt: 1, Container: job.ContainerName(id, 1), Reason: "lost"}
		}
	}
	f.move("a", job.StateLaunching, job.StateQueued, at(2*time.Second), fence("a"))
	f.move("b", job.StateLaunching, job.StateLost, at(3*time.Second), fence("b"))
	if fs, err := f.s.FenceList(f.ctx, "h2"); err != nil || len(fs) != 0 {
		f.t.Fatalf("FenceList(h2) = %+v, %v", fs, err)
	}
	fs, err := f.s.FenceList(f.ctx, "")
	if err != nil || len(fs) != 2 {
		f.t.Fatalf("FenceList() = %+v, %v; want 2", fs, err)
	}
	want := store.Fence{Host: "h1", JobID: "a", Attempt: 1, Container: job.ContainerName("a", 1), Reason: "lost", CreatedAt: at(2 * time.Second)}
	if got := fs[0]; got.Host != want.Host || got.JobID != want.JobID || got.Attempt != want.Attempt ||
		got.Container != want.Container || got.Reason != want.Reason || !got.CreatedAt.Equal(want.CreatedAt) {
		f.t.Fatalf("FenceList()[0] = %+v, want %+v (oldest first)", got, want)
	}
	if fs[1].JobID != "b" {
		f.t.Fatalf("FenceList()[1] = %+v", fs[1])
	}
	note := "container removed from h1 when it answered again"
	if err := f.s.FenceClear(f.ctx, store.FenceClearParams{Host: "h1", JobID: "a", Attempt: 1, Note: note}); err != nil {
		f.t.Fatal(err)
	}
	if err := f.s.FenceClear(f.ctx, store.FenceClearParams{Host: "h1", JobID: "a", Attempt: 1, Note: note}); err != nil {
		f.t.Fatalf("clearing twice: %v", err)
	}
	fs, _ = f.s.FenceList(f.ctx, "h1")
	if len(fs) != 1 || fs[0].JobID != "b" {
		f.t.Fatalf("after clearing a: %+v", fs)
	}
	as := f.attempts("a")
	if len(as) != 1 || !strings.Contains(as[0].Error, note) || !strings.HasPrefix(as[0].Error, "launching to queued") {
		f.t.Fatalf("attempt after FenceClear: %+v, want its error to keep the reason and add the note once", as)
	}
	if strings.Count(as[0].Error, note) != 1 {
		f.t.Fatalf("note added twice: %q", as[0].Error)
	}
}
