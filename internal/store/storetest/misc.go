package storetest

import (
	"bytes"
	"slices"
	"time"

	"fusebox/internal/job"
)

func testCancelRequested(f *fx) {
	for _, id := range []string{"queued", "launching", "running", "succeeded", "cancelled"} {
		f.insert(newJob(id, base))
	}
	f.launch("launching", "h1", 1, at(time.Second))
	for _, id := range []string{"running", "succeeded"} {
		f.launch(id, "h1", 1, at(time.Second))
		f.move(id, job.StateLaunching, job.StateRunning, at(2*time.Second))
	}
	f.move("succeeded", job.StateRunning, job.StateSucceeded, at(3*time.Second))
	f.move("cancelled", job.StateQueued, job.StateCancelled, at(3*time.Second))

	for _, id := range []string{"launching", "running", "running"} { // twice is fine
		before := f.get(id)
		got, err := f.s.JobSetCancelRequested(f.ctx, id)
		if err != nil {
			f.t.Fatalf("JobSetCancelRequested(%s): %v", id, err)
		}
		want := *before
		want.CancelRequested = true
		want.UpdatedAt = got.UpdatedAt // the store may stamp it
		checkJob(f.t, "JobSetCancelRequested("+id+")", &want, got)
		checkJob(f.t, "JobGetByID("+id+") after JobSetCancelRequested", got, f.get(id))
		if ts := f.transitions(id); ts[len(ts)-1].To != before.State {
			f.t.Fatalf("JobSetCancelRequested(%s) recorded a transition: %+v", id, ts)
		}
	}
	for _, id := range []string{"succeeded", "cancelled"} {
		before := f.snapshot(id)
		_, err := f.s.JobSetCancelRequested(f.ctx, id)
		checkErr(f.t, "JobSetCancelRequested("+id+")", err, job.ErrTerminal)
		f.unchanged("JobSetCancelRequested("+id+")", before)
	}
	// A queued job is cancelled by a transition, never flagged: a flag on
	// it could be missed by the scheduler.
	before := f.snapshot("queued")
	_, err := f.s.JobSetCancelRequested(f.ctx, "queued")
	checkErr(f.t, "JobSetCancelRequested(queued)", err, job.ErrConflict)
	f.unchanged("JobSetCancelRequested(queued)", before)
	_, err = f.s.JobSetCancelRequested(f.ctx, "nope")
	checkErr(f.t, "JobSetCancelRequested(nope)", err, job.ErrNotFound)

	// The dispatcher then stops the container and records the cancellation.
	j := f.move("running", job.StateRunning, job.StateCancelled, at(4*time.Second))
	if j.State != job.StateCancelled || !j.CancelRequested {
		f.t.Fatalf("after cancelling: %+v", j)
	}
}

func sameMark(a, b job.LogMark) bool { return a.Off == b.Off && a.At.Equal(b.At) }

func testLogs(f *fx) {
	checkLogs := func(what string, want job.Logs) {
		f.t.Helper()
		got, err := f.s.LogsGet(f.ctx, "j")
		if err != nil {
			f.t.Fatalf("%s: LogsGet: %v", what, err)
		}
		if !bytes.Equal(got.Stdout, want.Stdout) || !bytes.Equal(got.Stderr, want.Stderr) || got.Truncated != want.Truncated ||
			!slices.EqualFunc(got.StdoutMarks, want.StdoutMarks, sameMark) || !slices.EqualFunc(got.StderrMarks, want.StderrMarks, sameMark) {
			f.t.Fatalf("%s: LogsGet = %+v, want %+v", what, got, want)
		}
	}
	_, err := f.s.LogsGet(f.ctx, "j")
	checkErr(f.t, "LogsGet(unknown job)", err, job.ErrNotFound)
	err = f.s.LogsSet(f.ctx, "j", job.Logs{Stdout: []byte("x")})
	checkErr(f.t, "LogsSet(unknown job)", err, job.ErrNotFound)

	f.insert(newJob("j", base))
	_, err = f.s.LogsGet(f.ctx, "j")
	checkErr(f.t, "LogsGet(no logs yet)", err, job.ErrNotFound)

	first := job.Logs{Stdout: []byte("hello\nworld\n"), Stderr: []byte{0, 1, 0xff, '\n'}, Truncated: true,
		StdoutMarks: []job.LogMark{{Off: 0, At: base}, {Off: 6, At: base.Add(1500 * time.Millisecond)}},
		StderrMarks: []job.LogMark{{Off: 0, At: base.Add(time.Nanosecond)}}}
	if err := f.s.LogsSet(f.ctx, "j", first); err != nil {
		f.t.Fatal(err)
	}
	checkLogs("first", first)

	second := job.Logs{Stdout: []byte("again")}
	if err := f.s.LogsSet(f.ctx, "j", second); err != nil {
		f.t.Fatal(err)
	}
	checkLogs("replaced", second)

	big := job.Logs{Stdout: bytes.Repeat([]byte("0123456789abcdef"), 1<<16)} // 1 MiB
	if err := f.s.LogsSet(f.ctx, "j", big); err != nil {
		f.t.Fatal(err)
	}
	checkLogs("1 MiB", big)

	if err := f.s.LogsSet(f.ctx, "j", job.Logs{}); err != nil {
		f.t.Fatal(err)
	}
	checkLogs("empty", job.Logs{})
}

func testCloseTwice(f *fx) {
	f.insert(newJob("j", base))
	if err := f.s.Close(); err != nil {
		f.t.Fatalf("Close: %v", err)
	}
	if err := f.s.Close(); err != nil {
		f.t.Fatalf("second Close: %v", err)
	}
}

func testInstanceID(f *fx) {
	id, err := f.s.InstanceID(f.ctx)
	if err != nil || id == "" {
		f.t.Fatalf("InstanceID: %q, %v; want an id", id, err)
	}
	f.insert(newJob("a", base))
	if again, err := f.s.InstanceID(f.ctx); err != nil || again != id {
		f.t.Fatalf("InstanceID again: %q, %v; want %q: it never changes", again, err, id)
	}
}
