package dispatch_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"fusebox/internal/dispatch"
	"fusebox/internal/engine"
	"fusebox/internal/enginetest"
	"fusebox/internal/job"
	"fusebox/internal/store"
)

// A dispatcher stopped with jobs running and queued, then started again on
// the same database: every job reaches a terminal state and each attempt's
// container was created exactly once (counted from the engines' events).
func TestRestartAdoptsRunningJobsAndNeverCreatesTwice(t *testing.T) {
	engines := enginetest.ForTest(t, 2)
	cc := countCreates(t, engines)
	r := newRig(t, engines, rigOptions{capacity: 2})
	var ids []string
	for range 8 {
		ids = append(ids, r.submit(r.spec("sleep", "2s", "print", "done")).ID)
	}
	enginetest.Eventually(t, 30*time.Second, "some jobs running", func() bool {
		n := 0
		for _, id := range ids {
			if j, _ := r.d.Get(context.Background(), id); j.State == job.StateRunning {
				n++
			}
		}
		return n >= 2
	})
	r.stop()
	for range 2 { // submitted while fusebox is down: stored, run after the restart
		j, _, err := submitDirect(r, r.spec("print", "late"))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	r.start()
	for _, id := range ids {
		j := r.wait(id, 90*time.Second)
		if j.State != job.StateSucceeded {
			t.Fatalf("job %+v", j)
		}
		atts, _ := r.d.Attempts(context.Background(), id)
		for _, a := range atts {
			enginetest.Eventually(t, 5*time.Second, "create event", func() bool { return creates(cc, id, a.Number) >= 1 })
			if n := creates(cc, id, a.Number); n != 1 {
				t.Fatalf("job %s attempt %d: %d containers created", id, a.Number, n)
			}
		}
	}
}

// submitDirect inserts a job the way Submit does, without a running
// dispatcher.
func submitDirect(r *rig, s job.Spec) (*job.Job, bool, error) {
	st, err := openStore(r)
	if err != nil {
		return nil, false, err
	}
	defer st.Close()
	now := time.Now().UTC()
	return st.JobInsert(context.Background(), store.JobInsertParams{Job: &job.Job{ID: "late" + strconv.FormatInt(now.UnixNano(), 36), Spec: s, CreatedAt: now}})
}

// A crash between committing "launching" and starting the container: the
// container exists (created, not started). The restarted dispatcher adopts
// it under the same name instead of creating a second one.
func TestRecoveryAdoptsAContainerCreatedBeforeTheCrash(t *testing.T) {
	engines := enginetest.ForTest(t, 1)
	cc := countCreates(t, engines)
	r := newRig(t, engines, rigOptions{})
	r.stop()

	st, err := openStore(r)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now().UTC()
	spec := r.spec("print", "adopted")
	j, _, err := st.JobInsert(ctx, store.JobInsertParams{Job: &job.Job{ID: "crashjob1", Spec: spec, CreatedAt: now}})
	if err != nil {
		t.Fatal(err)
	}
	host := engines.Engines[0].Name
	j, err = st.JobTransition(ctx, store.JobTransitionParams{ID: j.ID, From: []job.State{job.StateQueued}, To: job.StateLaunching,
		Reason: "placed", Now: now, Host: &host, SetAttempt: store.Ptr(1)})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	c, err := engine.New(engine.Config{Name: host, Address: engines.Engines[0].UnixHost(), NetworkMode: "none"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Create(ctx, engine.ContainerSpec{Name: job.ContainerName(j.ID, 1), Image: spec.Image, Cmd: spec.Command,
		Labels: map[string]string{job.LabelManaged: "true", job.LabelJobID: j.ID, job.LabelAttempt: "1"}}); err != nil {
		t.Fatal(err)
	}

	r.start()
	done := r.wait(j.ID, 30*time.Second)
	if done.State != job.StateSucceeded || done.Attempt != 1 {
		t.Fatalf("%+v", done)
	}
	logs, _ := r.d.Logs(ctx, j.ID)
	if string(logs.Stdout) != "adopted\n" {
		t.Fatalf("output %q", logs.Stdout)
	}
	if n := creates(cc, j.ID, 1); n != 1 {
		t.Fatalf("%d containers created for attempt 1, want the one made before the crash", n)
	}
}

// A running job whose host dies stays put while the host may come back,
// and is rescheduled on another host once it has been unreachable for
// LostAfter; the stale attempt's container is removed when the host is
// back.
func TestJobOnALostHostIsRescheduled(t *testing.T) {
	engines := enginetest.ForTest(t, 2)
	enginetest.RequireFaults(t, engines)
	r := newRig(t, engines, rigOptions{dispatch: dispatch.Config{LostAfter: 2 * time.Second, ReconcileInterval: 500 * time.Millisecond}})
	ctx := context.Background()
	j := r.submit(r.spec("sleep", "4s", "print", "finished"))
	running := r.waitState(j.ID, job.StateRunning, 30*time.Second)
	var lost, other *enginetest.Engine
	for _, e := range engines.Engines {
		if e.Name == running.Host {
			lost = e
		} else {
			other = e
		}
	}
	if err := lost.Kill(); err != nil {
		t.Fatal(err)
	}
	done := r.wait(j.ID, 60*time.Second)
	if done.State != job.StateSucceeded || done.Host != other.Name || done.Attempt != 2 {
		t.Fatalf("%+v", done)
	}
	atts, _ := r.d.Attempts(ctx, j.ID)
	if len(atts) != 2 || atts[0].Outcome != "lost_host" || atts[0].Host != lost.Name {
		t.Fatalf("attempts %+v", atts)
	}
	// The host comes back: the first attempt's container is swept.
	if err := lost.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := engine.New(engine.Config{Name: lost.Name, Address: lost.UnixHost()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	enginetest.Eventually(t, 30*time.Second, "stale container removed", func() bool {
		cts, err := c.List(ctx, map[string]string{job.LabelJobID: j.ID})
		return err == nil && len(cts) == 0
	})
}

// A launch stuck on a host that hangs fails over as soon as the host's
// breaker opens, not when its own (long) call deadline passes.
func TestLaunchOnAHostThatHangsFailsOverWhenItsBreakerOpens(t *testing.T) {
	engines := enginetest.ForTest(t, 2)
	enginetest.RequireFaults(t, engines)
	long := 60 * time.Second
	r := newRig(t, engines, rigOptions{timeouts: &engine.Timeouts{Create: long, Start: long, ImageInspect: long, Inspect: time.Second, List: 2 * time.Second, Logs: 2 * time.Second, Remove: 2 * time.Second, Stop: 2 * time.Second}})
	hung, other := engines.Engines[0], engines.Engines[1]
	r.fleet.Drain(other.Name) // the job must go to the host about to hang
	if err := hung.Hang(); err != nil {
		t.Fatal(err)
	}
	defer hung.Resume()
	start := time.Now()
	j := r.submit(r.spec("print", "ok"))
	enginetest.Eventually(t, 10*time.Second, "the job placed on the hung host", func() bool {
		g, _ := r.d.Get(context.Background(), j.ID)
		return g.State == job.StateLaunching && g.Host == hung.Name
	})
	r.fleet.Release(other.Name)
	done := r.wait(j.ID, 30*time.Second)
	took := time.Since(start)
	if done.State != job.StateSucceeded || done.Host != other.Name || done.Attempt != 2 {
		t.Fatalf("%+v", done)
	}
	atts, _ := r.d.Attempts(context.Background(), j.ID)
	if len(atts) != 2 || atts[0].Outcome != "host_fault" || !strings.Contains(atts[0].Error, "became unavailable during the launch") {
		t.Fatalf("first attempt %+v", atts)
	}
	if took > 20*time.Second {
		t.Fatalf("failover took %v: it waited for the 60s call deadline instead of the breaker", took)
	}
	t.Logf("submit to success with the first host hanging: %v", took.Round(time.Millisecond))
}

// With the lost policy, a job whose host stays unreachable past LostAfter
// is marked lost, with the reason, and not run again.
func TestJobOnALostHostIsMarkedLostByPolicy(t *testing.T) {
	engines := enginetest.ForTest(t, 2)
	enginetest.RequireFaults(t, engines)
	r := newRig(t, engines, rigOptions{dispatch: dispatch.Config{LostAfter: 2 * time.Second, LostPolicy: dispatch.LostMark}})
	j := r.submit(r.spec("sleep", "30s"))
	running := r.waitState(j.ID, job.StateRunning, 30*time.Second)
	for _, e := range engines.Engines {
		if e.Name == running.Host {
			if err := e.Kill(); err != nil {
				t.Fatal(err)
			}
		}
	}
	done := r.wait(j.ID, 30*time.Second)
	if done.State != job.StateLost || done.Cause != job.CauseHost || done.Attempt != 1 || !strings.Contains(done.Reason, "unreachable") {
		t.Fatalf("%+v", done)
	}
	tr, _ := r.d.Transitions(context.Background(), j.ID)
	if last := tr[len(tr)-1]; last.To != job.StateLost || last.Reason != done.Reason {
		t.Fatalf("last transition %+v", last)
	}
}
