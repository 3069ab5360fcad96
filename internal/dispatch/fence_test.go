package dispatch_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"fusebox/internal/dispatch"
	"fusebox/internal/engine"
	"fusebox/internal/enginetest"
	"fusebox/internal/job"
)

var (
	routeCreate = enginetest.Route{Method: "POST", Path: `^/containers/create$`}
	routeStart  = enginetest.Route{Method: "POST", Path: `^/containers/[^/]+/start$`}
	routeImage  = enginetest.Route{Method: "GET", Path: `^/images/.+/json$`}
)

// viaAnswerProxy addresses every engine through its answer proxy.
func viaAnswerProxy(e *enginetest.Engine) string { return e.AnswerProxyHost() }

// direct returns a client of e that no fault touches.
func direct(t *testing.T, e *enginetest.Engine) *engine.Client {
	t.Helper()
	c, err := engine.New(engine.Config{Name: e.Name, Address: e.UnixHost()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// containersOf lists the containers of a job on e.
func containersOf(t *testing.T, c *engine.Client, jobID string) []*engine.Container {
	t.Helper()
	cts, err := c.List(context.Background(), map[string]string{job.LabelJobID: jobID})
	if err != nil {
		t.Fatal(err)
	}
	return cts
}

// Scenario 1: the start call reaches the host and the container runs, but
// the answer never comes back. The launch is fenced: no attempt elsewhere;
// the container is found by name and adopted, and the job ends on its one
// and only container.
func TestLostStartAnswerIsAdoptedNotRunTwice(t *testing.T) {
	engines := enginetest.ForTest(t, 2)
	enginetest.RequireFaults(t, engines)
	a, b := engines.Engines[0], engines.Engines[1]
	r := newRig(t, engines, rigOptions{addr: viaAnswerProxy})
	c := countCreates(t, engines)
	fault, err := a.DropAnswers(routeStart, 1)
	if err != nil {
		t.Fatal(err)
	}
	r.fleet.Drain(b.Name) // the job must go to a
	j := r.submit(r.spec("sleep", "1s", "print", "done"))
	if err := fault.Wait(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	r.fleet.Release(b.Name)
	done := r.wait(j.ID, 60*time.Second)
	if done.State != job.StateSucceeded || done.Host != a.Name || done.Attempt != 1 {
		t.Fatalf("job %+v: want succeeded on %s, attempt 1 (its container adopted)", done, a.Name)
	}
	if n1, n2 := creates(c, j.ID, 1), creates(c, j.ID, 2); n1 != 1 || n2 != 0 {
		t.Fatalf("containers created: attempt 1: %d, attempt 2: %d; want 1 and 0", n1, n2)
	}
	logs, _ := r.d.Logs(context.Background(), j.ID)
	if string(logs.Stdout) != "done\n" {
		t.Fatalf("logs %q", logs.Stdout)
	}
	tr, _ := r.d.Transitions(context.Background(), j.ID)
	if !hasReason(tr, "confirming whether container") {
		t.Fatalf("no transition says the launch was confirmed: %+v", tr)
	}
}

// Scenario 1, the host hung right after it acted: the launch stays fenced
// until the host is declared lost (LostAfter), then runs elsewhere; the
// old container is removed the moment the host answers again, placement
// skips the host until then, and the job's record says so.
func TestLaunchOnAHostThatHangsAfterActingIsFencedUntilDeclaredLost(t *testing.T) {
	engines := enginetest.ForTest(t, 2)
	enginetest.RequireFaults(t, engines)
	a, b := engines.Engines[0], engines.Engines[1]
	r := newRig(t, engines, rigOptions{addr: viaAnswerProxy, dispatch: dispatch.Config{LostAfter: 3 * time.Second}})
	fault, err := a.HoldAnswers(routeStart, 1)
	if err != nil {
		t.Fatal(err)
	}
	r.fleet.Drain(b.Name)
	j := r.submit(r.spec("sleep", "60s"))
	if err := fault.Wait(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	if err := a.Hang(); err != nil {
		t.Fatal(err)
	}
	defer a.Resume()
	r.fleet.Release(b.Name)
	cb := direct(t, b)
	enginetest.Eventually(t, 60*time.Second, "attempt 2 running on "+b.Name, func() bool {
		g, _ := r.d.Get(context.Background(), j.ID)
		return g.State == job.StateRunning && g.Host == b.Name && g.Attempt == 2
	})
	atts, _ := r.d.Attempts(context.Background(), j.ID)
	if len(atts) != 2 || atts[0].Outcome != "lost_host" || !strings.Contains(atts[0].Error, "will be removed from "+a.Name) {
		t.Fatalf("attempts %+v", atts)
	}
	if n := r.fleet.Host(a.Name).Fenced(); n != 1 {
		t.Fatalf("%s fenced %d containers, want 1", a.Name, n)
	}
	if len(containersOf(t, cb, j.ID)) != 1 {
		t.Fatal("attempt 2's container is not on " + b.Name)
	}
	fault.Clear()
	if err := a.Resume(); err != nil {
		t.Fatal(err)
	}
	ca := direct(t, a)
	enginetest.Eventually(t, 60*time.Second, "the fenced container removed from "+a.Name, func() bool {
		return len(containersOf(t, ca, j.ID)) == 0 && r.fleet.Host(a.Name).Fenced() == 0
	})
	atts, _ = r.d.Attempts(context.Background(), j.ID)
	if !strings.Contains(atts[0].Error, "removed from "+a.Name+" at") {
		t.Fatalf("attempt 1's record does not say its container was removed: %q", atts[0].Error)
	}
	r.d.Cancel(context.Background(), j.ID)
	r.wait(j.ID, 30*time.Second)
}

// Scenario 2: isolating (or draining) a healthy host is "no new work":
// the job running there is monitored to its end, never taken for lost,
// and a launch in flight when the isolate comes is not charged to the job.
func TestIsolateNeverMakesARunningJobLookLost(t *testing.T) {
	engines := enginetest.ForTest(t, 2)
	enginetest.RequireFaults(t, engines)
	a, b := engines.Engines[0], engines.Engines[1]
	r := newRig(t, engines, rigOptions{addr: viaAnswerProxy,
		dispatch: dispatch.Config{LostAfter: 500 * time.Millisecond, MaxAttempts: 1}})
	c := countCreates(t, engines)
	r.fleet.Drain(b.Name)
	running := r.submit(r.spec("sleep", "2s", "print", "ran"))
	r.waitState(running.ID, job.StateRunning, 30*time.Second)

	// A second job whose start answer is late: the isolate lands mid-launch.
	fault, err := a.DelayAnswers(routeStart, 1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	launching := r.submit(r.spec("print", "launched"))
	if err := fault.Wait(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	if err := r.fleet.Isolate(a.Name); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{running.ID, launching.ID} {
		done := r.wait(id, 60*time.Second)
		if done.State != job.StateSucceeded || done.Host != a.Name || done.Attempt != 1 {
			t.Fatalf("job %+v: want succeeded on the isolated host %s on attempt 1", done, a.Name)
		}
		if creates(c, id, 1) != 1 || creates(c, id, 2) != 0 {
			t.Fatalf("job %s: %d containers for attempt 1, %d for attempt 2", id, creates(c, id, 1), creates(c, id, 2))
		}
	}
	if st := r.fleet.Host(a.Name).Status(); st.State != "isolated" {
		t.Fatalf("host %s is %s, want isolated", a.Name, st.State)
	}
}

// Scenario 3: an EOF or reset after the daemon acted is not "unreachable":
// the outcome is unknown, the container is confirmed by name, and a job
// with max_attempts 1 makes exactly one container and ends.
func TestAnswersLostAfterTheDaemonActedMakeOneContainer(t *testing.T) {
	engines := enginetest.ForTest(t, 1)
	enginetest.RequireFaults(t, engines)
	e := engines.Engines[0]
	r := newRig(t, engines, rigOptions{addr: func(e *enginetest.Engine) string { return e.AnswerProxyTCPHost() },
		dispatch: dispatch.Config{MaxAttempts: 1}})
	c := countCreates(t, engines)
	drop, err := e.DropAnswers(routeCreate, 1) // EOF after the create
	if err != nil {
		t.Fatal(err)
	}
	reset, err := e.ResetAnswers(routeStart, 1) // then a reset after the start
	if err != nil {
		t.Fatal(err)
	}
	j := r.submit(r.spec("print", "once"))
	done := r.wait(j.ID, 60*time.Second)
	if drop.Hits() != 1 || reset.Hits() != 1 {
		t.Fatalf("faults hit %d and %d times, want 1 each", drop.Hits(), reset.Hits())
	}
	if done.State != job.StateSucceeded || done.Attempt != 1 {
		t.Fatalf("job %+v: want succeeded on attempt 1", done)
	}
	if n := creates(c, j.ID, 1); n != 1 {
		t.Fatalf("%d containers created, want 1", n)
	}
	for _, h := range r.fleet.Statuses() {
		t.Logf("host %s breaker %+v", h.Name, h.Breaker)
	}
}

// Scenario 4: a cancel accepted during a launch that then fails over is
// never placed again, and the handle of one attempt never unregisters
// another's.
func TestCancelDuringAFailingLaunchIsNeverPlacedAgain(t *testing.T) {
	engines := enginetest.ForTest(t, 2)
	enginetest.RequireFaults(t, engines)
	a, b := engines.Engines[0], engines.Engines[1]
	r := newRig(t, engines, rigOptions{addr: viaAnswerProxy, noHealth: true})
	c := countCreates(t, engines)
	hold, err := a.HoldAnswers(routeImage, 1)
	if err != nil {
		t.Fatal(err)
	}
	r.fleet.Drain(b.Name)
	j := r.submit(r.spec("print", "never"))
	if err := hold.Wait(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := r.d.Cancel(context.Background(), j.ID); err != nil {
		t.Fatal(err)
	}
	r.fleet.Release(b.Name)
	// The host's breaker opens: the launch in flight is aborted as a host
	// fault and would fail over to b.
	if !r.fleet.Host(a.Name).Breaker().Trip(time.Minute) {
		t.Fatal("breaker did not trip")
	}
	done := r.wait(j.ID, 30*time.Second)
	if done.State != job.StateCancelled {
		t.Fatalf("job %+v: want cancelled", done)
	}
	tr, _ := r.d.Transitions(context.Background(), j.ID)
	for _, x := range tr {
		if x.To == job.StateLaunching && x.Host == b.Name {
			t.Fatalf("the cancelled job was placed again: %+v", tr)
		}
	}
	if n := creates(c, j.ID, 1) + creates(c, j.ID, 2); n != 0 {
		t.Fatalf("%d containers created for a job cancelled before its create", n)
	}
}

// Scenario 8: after a long outage of fusebox, a job left launching on a
// host that does not answer is not failed over at the first error: the
// lost-host clock starts at the restart, and lost_host.policy: lost holds.
func TestRecoveryDatesTheLostHostClockFromTheRestart(t *testing.T) {
	engines := enginetest.ForTest(t, 2)
	enginetest.RequireFaults(t, engines)
	a, b := engines.Engines[0], engines.Engines[1]
	lostAfter := 3 * time.Second
	r := newRig(t, engines, rigOptions{addr: viaAnswerProxy,
		dispatch: dispatch.Config{LostAfter: lostAfter, LostPolicy: dispatch.LostMark}})
	hold, err := a.HoldAnswers(routeStart, 1)
	if err != nil {
		t.Fatal(err)
	}
	r.fleet.Drain(b.Name)
	j := r.submit(r.spec("sleep", "60s"))
	if err := hold.Wait(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	r.stop() // fusebox goes away mid-launch
	if err := a.Hang(); err != nil {
		t.Fatal(err)
	}
	defer a.Resume()
	hold.Clear()
	st, err := openStore(r)
	if err != nil {
		t.Fatal(err)
	}
	left, _ := st.JobGetByID(context.Background(), j.ID)
	st.Close()
	enginetest.Eventually(t, 30*time.Second, "the outage of fusebox outlasts LostAfter", func() bool {
		return time.Since(left.UpdatedAt) > lostAfter+time.Second
	})
	restarted := time.Now()
	r.start()
	done := r.wait(j.ID, 60*time.Second)
	if done.State != job.StateLost || done.Cause != job.CauseHost || done.Attempt != 1 || done.Host != a.Name {
		t.Fatalf("job %+v: want lost on %s (policy lost), attempt 1", done, a.Name)
	}
	if waited := done.FinishedAt.Sub(restarted); waited < lostAfter {
		t.Fatalf("declared lost %v after the restart, before LostAfter (%v)", waited, lostAfter)
	}
	if !strings.Contains(done.Reason, "will be removed from "+a.Name) {
		t.Fatalf("reason %q: want the container fenced", done.Reason)
	}
	// The host's count of fences follows the commit that stored the fence.
	enginetest.Eventually(t, 5*time.Second, "the container fenced on "+a.Name, func() bool { return r.fleet.Host(a.Name).Fenced() == 1 })
	if err := a.Resume(); err != nil {
		t.Fatal(err)
	}
	ca := direct(t, a)
	enginetest.Eventually(t, 60*time.Second, "the fenced container removed", func() bool {
		return len(containersOf(t, ca, j.ID)) == 0 && r.fleet.Host(a.Name).Fenced() == 0
	})
}

// Scenario 10: a container killed because its daemon restarted is a host
// fault: the job runs again elsewhere, and the transition says why.
func TestDaemonRestartIsAHostFaultNotTheJobs(t *testing.T) {
	engines := enginetest.ForTest(t, 2)
	enginetest.RequireFaults(t, engines)
	a, b := engines.Engines[0], engines.Engines[1]
	r := newRig(t, engines, rigOptions{})
	r.fleet.Drain(b.Name)
	j := r.submit(r.spec("sleep", "30s", "print", "ok"))
	r.waitState(j.ID, job.StateRunning, 30*time.Second)
	r.fleet.Release(b.Name)
	if err := a.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	enginetest.Eventually(t, 60*time.Second, "attempt 2 on "+b.Name, func() bool {
		g, _ := r.d.Get(context.Background(), j.ID)
		return g.Attempt == 2 && g.Host == b.Name
	})
	atts, _ := r.d.Attempts(context.Background(), j.ID)
	if atts[0].Outcome != "host_fault" || !strings.Contains(atts[0].Error, "Docker daemon on "+a.Name+" went down") {
		t.Fatalf("attempt 1 %+v: want a host fault naming the daemon", atts[0])
	}
	r.d.Cancel(context.Background(), j.ID)
	r.wait(j.ID, 30*time.Second)
}

func hasReason(tr []job.Transition, s string) bool {
	for _, x := range tr {
		if strings.Contains(x.Reason, s) {
			return true
		}
	}
	return false
}
