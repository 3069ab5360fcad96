package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"fusebox/breaker"
	"fusebox/internal/dispatch"
	"fusebox/internal/engine"
	"fusebox/internal/fleet"
	"fusebox/internal/job"
	"fusebox/internal/store"

	"fusebox/internal/enginetest"
)

func TestJobRunsToSuccessWithLogsAndTransitions(t *testing.T) {
	r := newRig(t, enginetest.Shared(t, 2), rigOptions{})
	j := r.submit(r.spec("print", "hello", "stderr", "oops"))
	if j.State != job.StateQueued || j.ID == "" {
		t.Fatalf("submitted job %+v", j)
	}
	done := r.wait(j.ID, 30*time.Second)
	if done.State != job.StateSucceeded || done.ExitCode == nil || *done.ExitCode != 0 || done.Attempt != 1 {
		t.Fatalf("job ended %+v", done)
	}
	logs, err := r.d.Logs(context.Background(), j.ID)
	if err != nil || string(logs.Stdout) != "hello\n" || string(logs.Stderr) != "oops\n" {
		t.Fatalf("logs %q %q %v", logs.Stdout, logs.Stderr, err)
	}
	tr, _ := r.d.Transitions(context.Background(), j.ID)
	var states []string
	for _, x := range tr {
		states = append(states, string(x.To))
	}
	if got := strings.Join(states, ","); got != "queued,launching,running,succeeded" {
		t.Fatalf("transitions %s", got)
	}
	// The container is gone once the job has ended.
	h := r.fleet.Host(done.Host)
	enginetest.Eventually(t, 10*time.Second, "container removed", func() bool {
		_, err := h.Client().Inspect(context.Background(), done.ContainerID)
		return errors.Is(err, engine.ErrNotFound)
	})
}

func TestNonZeroExitIsAJobFailureAndNeverTripsABreaker(t *testing.T) {
	// No health checks: the breakers count only what the jobs do.
	r := newRig(t, enginetest.Shared(t, 2), rigOptions{noHealth: true})
	var ids []string
	for range 8 { // more than the breaker's threshold of 3
		ids = append(ids, r.submit(r.spec("exit", "3")).ID)
	}
	for _, id := range ids {
		j := r.wait(id, 60*time.Second)
		if j.State != job.StateFailed || j.ExitCode == nil || *j.ExitCode != 3 || j.Attempt != 1 || j.Cause != job.CauseExit || !j.Cause.Own() {
			t.Fatalf("job %+v: want failed with exit code 3 on its first attempt, its own fault (cause exit)", j)
		}
		if j.Reason != "exit code 3" {
			t.Fatalf("reason %q", j.Reason)
		}
	}
	for _, h := range r.fleet.Statuses() {
		if h.Breaker.State != breaker.StateClosed || h.Breaker.ConsecutiveFailures != 0 || h.Breaker.Trips != 0 {
			t.Fatalf("host %s breaker after job failures: %+v", h.Name, h.Breaker)
		}
	}
	// A job fault at launch (no such image) fails the job, not the host.
	j := r.submit(job.Spec{Image: "fusebox/no-such-image:1", PullPolicy: job.PullNever})
	j = r.wait(j.ID, 30*time.Second)
	if j.State != job.StateFailed || !strings.Contains(j.Reason, "not on the host") || j.Cause != job.CauseRefused {
		t.Fatalf("missing image: %+v", j)
	}
	for _, h := range r.fleet.Statuses() {
		if h.Breaker.ConsecutiveFailures != 0 {
			t.Fatalf("host %s counted a job fault: %+v", h.Name, h.Breaker)
		}
	}
}

func TestSubmitValidatesAndIsIdempotent(t *testing.T) {
	r := newRig(t, enginetest.Shared(t, 2), rigOptions{})
	ctx := context.Background()
	_, _, err := r.d.Submit(ctx, job.Spec{Image: "", MemoryBytes: -1})
	var fe *job.FieldError
	if !errors.Is(err, job.ErrInvalid) || !errors.As(err, &fe) || !strings.Contains(err.Error(), "image: is required") || !strings.Contains(err.Error(), "memory_bytes") {
		t.Fatalf("bad spec: %v", err)
	}
	_, _, err = r.d.Submit(ctx, job.Spec{Image: r.img.Ref, Constraints: map[string]string{"zone": "mars"}})
	if !errors.Is(err, job.ErrInvalid) || !strings.Contains(err.Error(), "constraints") {
		t.Fatalf("unsatisfiable constraints: %v", err)
	}
	list, _ := r.d.List(ctx, store.JobListParams{})
	if len(list) != 0 {
		t.Fatalf("rejected submissions stored %d jobs", len(list))
	}
	s := r.spec("exit", "0")
	s.IdempotencyKey = "k1"
	a, existed, err := r.d.Submit(ctx, s)
	if err != nil || existed {
		t.Fatal(err, existed)
	}
	b, existed, err := r.d.Submit(ctx, s)
	if err != nil || !existed || b.ID != a.ID {
		t.Fatalf("resubmit: %v existed=%v id %s vs %s", err, existed, b.ID, a.ID)
	}
	s.Command = []string{testjob, "exit", "1"}
	if _, _, err := r.d.Submit(ctx, s); !errors.Is(err, job.ErrDuplicate) {
		t.Fatalf("same key, other spec: %v", err)
	}
	r.wait(a.ID, 30*time.Second)
}

func TestCancelAndTimeoutStopTheContainer(t *testing.T) {
	r := newRig(t, enginetest.Shared(t, 2), rigOptions{})
	ctx := context.Background()
	hang := r.submit(r.spec("print", "started", "hang"))
	running := r.waitState(hang.ID, job.StateRunning, 30*time.Second)
	if _, err := r.d.Cancel(ctx, hang.ID); err != nil {
		t.Fatal(err)
	}
	j := r.wait(hang.ID, 30*time.Second)
	if j.State != job.StateCancelled || j.Cause != job.CauseCancelled {
		t.Fatalf("cancelled job ended %+v", j)
	}
	h := r.fleet.Host(running.Host)
	enginetest.Eventually(t, 10*time.Second, "cancelled container removed", func() bool {
		_, err := h.Client().Inspect(ctx, running.ContainerID)
		return errors.Is(err, engine.ErrNotFound)
	})
	if _, err := r.d.Cancel(ctx, hang.ID); !errors.Is(err, job.ErrTerminal) {
		t.Fatalf("cancel twice: %v", err)
	}

	s := r.spec("sleep", "60s")
	s.Timeout = job.Duration(time.Second)
	slow := r.submit(s)
	j = r.wait(slow.ID, 30*time.Second)
	if j.State != job.StateTimedOut || !strings.Contains(j.Reason, "timeout") || j.Cause != job.CauseTimeout {
		t.Fatalf("timed-out job ended %+v", j)
	}
	if d := j.FinishedAt.Sub(j.StartedAt); d < time.Second || d > 10*time.Second {
		t.Fatalf("timed out after %v; want about 1s plus the stop grace", d)
	}
}

func TestCancelQueuedJob(t *testing.T) {
	engines := enginetest.Shared(t, 2)
	r := newRig(t, engines, rigOptions{capacity: 1})
	for _, h := range r.fleet.Hosts() {
		r.fleet.Drain(h.Name())
	}
	j := r.submit(r.spec("exit", "0"))
	enginetest.Eventually(t, 10*time.Second, "queued reason", func() bool {
		g, _ := r.d.Get(context.Background(), j.ID)
		return strings.Contains(g.Reason, "draining")
	})
	if _, err := r.d.Cancel(context.Background(), j.ID); err != nil {
		t.Fatal(err)
	}
	if g := r.wait(j.ID, 5*time.Second); g.State != job.StateCancelled || g.Attempt != 0 {
		t.Fatalf("%+v", g)
	}
}

// With every host down, submissions are accepted up to the bound and
// refused past it; when an engine comes back, the queue drains and every
// accepted job completes. Waiting uses no attempt.
func TestAllHostsDownQueueIsBoundedAndDrains(t *testing.T) {
	engines := enginetest.ForTest(t, 2)
	enginetest.RequireFaults(t, engines)
	r := newRig(t, engines, rigOptions{dispatch: dispatch.Config{MaxQueued: 6, MaxAttempts: 2}})
	for _, e := range engines.Engines {
		if err := e.Kill(); err != nil {
			t.Fatal(err)
		}
	}
	enginetest.Eventually(t, 20*time.Second, "every breaker open", func() bool {
		for _, h := range r.fleet.Statuses() {
			if h.Breaker.State == breaker.StateClosed {
				return false
			}
		}
		return true
	})
	var ids []string
	for i := range 6 {
		ids = append(ids, r.submit(r.spec("print", fmt.Sprint("job-", i))).ID)
	}
	_, _, err := r.d.Submit(context.Background(), r.spec("exit", "0"))
	var qf *dispatch.QueueFullError
	if !errors.Is(err, job.ErrQueueFull) || !errors.As(err, &qf) || qf.RetryAfter <= 0 {
		t.Fatalf("7th submission: %v, want a queue-full error with a retry-after", err)
	}
	if !strings.Contains(err.Error(), "queue is full") {
		t.Fatalf("error %q", err)
	}
	// The hosts stay down a while: jobs wait, and spend no attempts.
	time.Sleep(2 * time.Second) // a stretch of real downtime, not synchronisation
	for _, id := range ids {
		j, _ := r.d.Get(context.Background(), id)
		if j.State != job.StateQueued || j.Attempt != 0 || !strings.Contains(j.Reason, "waiting for a host") {
			t.Fatalf("job during the outage: %+v", j)
		}
	}
	if err := engines.Engines[1].Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		j := r.wait(id, 60*time.Second)
		if j.State != job.StateSucceeded || j.Host != engines.Engines[1].Name {
			t.Fatalf("job %d after recovery: %+v", i, j)
		}
		logs, _ := r.d.Logs(context.Background(), id)
		if string(logs.Stdout) != fmt.Sprint("job-", i, "\n") {
			t.Fatalf("job %d output %q", i, logs.Stdout)
		}
	}
}

// A hung host under a steady stream of jobs: its breaker opens; after that
// no job goes to it (the health checks probe it); every job succeeds on the
// other hosts; after a resume it is probed and takes jobs again.
func TestHungHostTripsAloneAndJobsFailOver(t *testing.T) {
	engines := enginetest.ForTest(t, 3)
	enginetest.RequireFaults(t, engines)
	r := newRig(t, engines, rigOptions{capacity: 3})
	hung := engines.Engines[0].Name
	ctx := context.Background()

	var ids []string
	submit := func(n int) {
		for range n {
			ids = append(ids, r.submit(r.spec("sleep", "200ms")).ID)
		}
	}
	submit(6)
	if err := engines.Engines[0].Hang(); err != nil {
		t.Fatal(err)
	}
	hungAt := time.Now()
	var openedAt time.Time
	enginetest.Eventually(t, 20*time.Second, "the hung host's breaker to open", func() bool {
		submit(1)
		for _, tr := range r.fleet.Transitions() {
			if tr.Host == hung && tr.To == breaker.StateOpen {
				openedAt = tr.At
				return true
			}
		}
		time.Sleep(100 * time.Millisecond)
		return false
	})
	t.Logf("hang to breaker open: %v", openedAt.Sub(hungAt).Round(time.Millisecond))
	submit(10)
	time.Sleep(3 * time.Second) // keep the host hung through a few open/half-open cycles
	submit(10)
	if err := engines.Engines[0].Resume(); err != nil {
		t.Fatal(err)
	}
	resumedAt := time.Now()

	// Every job succeeds, whatever host it started on.
	for _, id := range ids {
		if j := r.wait(id, 90*time.Second); j.State != job.StateSucceeded {
			tr, _ := r.d.Transitions(ctx, id)
			t.Fatalf("job %+v\ntransitions %+v", j, tr)
		}
	}
	// After the breaker opened, no attempt was placed on the hung host
	// until it was closed again.
	var closedAt time.Time
	for _, tr := range r.fleet.Transitions() {
		if tr.Host == hung && tr.To == breaker.StateClosed && tr.At.After(openedAt) {
			closedAt = tr.At
			break
		}
	}
	if closedAt.IsZero() {
		t.Fatalf("the hung host's breaker never closed after the resume: %+v", r.fleet.Transitions())
	}
	sent := 0
	for _, id := range ids {
		atts, _ := r.d.Attempts(ctx, id)
		for _, a := range atts {
			if a.Host == hung && a.StartedAt.After(openedAt) && a.StartedAt.Before(closedAt) {
				sent++
			}
		}
	}
	if sent != 0 {
		t.Fatalf("%d attempts placed on the hung host while its breaker was not closed", sent)
	}
	t.Logf("resume to breaker closed: %v", closedAt.Sub(resumedAt).Round(time.Millisecond))
	// And it takes jobs again.
	enginetest.Eventually(t, 30*time.Second, "a job placed on the recovered host", func() bool {
		j := r.submit(r.spec("exit", "0"))
		j = r.wait(j.ID, 30*time.Second)
		return j.Host == hung
	})
}

// With graceful degradation off, a job that no host can take because every
// host is out fails at once instead of waiting.
func TestWithoutGracefulDegradationAJobWithNoHostFails(t *testing.T) {
	r := newRig(t, enginetest.Shared(t, 2), rigOptions{dispatch: dispatch.Config{NoDegradation: true}})
	for _, h := range r.fleet.Hosts() {
		r.fleet.Isolate(h.Name())
	}
	j := r.wait(r.submit(r.spec("exit", "0")).ID, 10*time.Second)
	if j.State != job.StateFailed || j.Attempt != 0 || !strings.Contains(j.Reason, "graceful degradation is off") || j.Cause != job.CauseNoHost || j.Cause.Own() {
		t.Fatalf("%+v", j)
	}
	for _, h := range r.fleet.Hosts() {
		r.fleet.Release(h.Name())
	}
	if j := r.wait(r.submit(r.spec("exit", "0")).ID, 30*time.Second); j.State != job.StateSucceeded || j.Cause != job.CauseNone {
		t.Fatalf("after release: %+v", j)
	}
}

// Following a job's logs streams them while it runs and returns when it
// ends; following a finished job gives its stored output.
func TestFollowLogsWhileRunningAndAfter(t *testing.T) {
	r := newRig(t, enginetest.Shared(t, 2), rigOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	j := r.submit(r.spec("print", "first", "sleep", "1500ms", "stderr", "second", "print", "third"))
	r.waitState(j.ID, job.StateRunning, 30*time.Second)
	var out, errOut strings.Builder
	if err := r.d.FollowLogs(ctx, j.ID, engine.FollowOptions{}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if out.String() != "first\nthird\n" || errOut.String() != "second\n" {
		t.Fatalf("followed stdout %q stderr %q", out.String(), errOut.String())
	}
	// It returns once the job has ended (and its logs are stored), not
	// merely when the container's stream closes.
	if g, _ := r.d.Get(ctx, j.ID); g.State != job.StateSucceeded {
		t.Fatalf("FollowLogs returned with the job %s", g.State)
	}
	out.Reset()
	errOut.Reset()
	if err := r.d.FollowLogs(ctx, j.ID, engine.FollowOptions{}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if out.String() != "first\nthird\n" || errOut.String() != "second\n" {
		t.Fatalf("stored stdout %q stderr %q", out.String(), errOut.String())
	}
}

// A host that cannot be reached at all (nothing listens on its socket)
// takes no attempt from the jobs sent to it: even with max_attempts 1 they
// run elsewhere.
func TestUnreachableHostUsesNoAttempts(t *testing.T) {
	dead := fleet.HostConfig{Name: "dead", Engine: engine.Config{Address: "unix:///nonexistent/docker.sock"}}
	r := newRig(t, enginetest.Shared(t, 1), rigOptions{noHealth: true, extra: []fleet.HostConfig{dead},
		dispatch: dispatch.Config{MaxAttempts: 1}})
	var ids []string
	for range 4 {
		ids = append(ids, r.submit(r.spec("exit", "0")).ID)
	}
	sawDead := false
	for _, id := range ids {
		j := r.wait(id, 60*time.Second)
		if j.State != job.StateSucceeded || j.Host == "dead" {
			t.Fatalf("%+v", j)
		}
		// The attempt users see is the attempts used: the one that ran.
		atts, _ := r.d.Attempts(context.Background(), id)
		if j.Attempt != 1 || len(atts) != 1 || atts[0].Host == "dead" {
			t.Fatalf("job %s: attempt %d, attempts %+v; want one, not on the dead host", id, j.Attempt, atts)
		}
		tr, _ := r.d.Transitions(context.Background(), id)
		for _, x := range tr {
			if x.Host == "dead" && x.From == job.StateLaunching {
				sawDead = true
				if x.To != job.StateQueued || x.Attempt != 0 || !strings.Contains(x.Reason, "nothing was created") {
					t.Fatalf("launch on the dead host recorded as %+v", x)
				}
			}
		}
	}
	if !sawDead {
		t.Fatal("no job was tried on the dead host; the test proved nothing")
	}
}
