package dispatch_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"fusebox/internal/dispatch"
	"fusebox/internal/engine"
	"fusebox/internal/enginetest"
	"fusebox/internal/fleet"
	"fusebox/internal/job"
	"fusebox/internal/store"
)

// ghost is a configured host that does not exist (nothing listens on its
// socket), carrying the label pool=ghost.
func ghost(t *testing.T, name string) fleet.HostConfig {
	return fleet.HostConfig{Name: name, Labels: map[string]string{"pool": "ghost"}, Capacity: 4,
		Engine: engine.Config{Address: "unix://" + filepath.Join(t.TempDir(), "nobody.sock")}}
}

// Issue 7.6: jobs whose only host is out, however many and however far
// ahead in the queue, do not delay a job another host can take.
func TestUnplaceableJobsDoNotDelayOthers(t *testing.T) {
	engines := enginetest.Shared(t, 1)
	r := newRig(t, engines, rigOptions{extra: []fleet.HostConfig{ghost(t, "ghost")}})
	if err := r.fleet.Isolate("ghost"); err != nil {
		t.Fatal(err)
	}
	var stuck []string
	for range 300 {
		s := r.spec("exit", "0")
		s.Constraints = map[string]string{"pool": "ghost"}
		s.Priority = 10 // ahead of the free job in the queue
		stuck = append(stuck, r.submit(s).ID)
	}
	submitted := time.Now()
	free := r.submit(r.spec("sleep", "30s"))
	r.waitState(free.ID, job.StateRunning, 15*time.Second)
	t.Logf("the free job ran %v after its submission, behind %d stuck jobs", time.Since(submitted).Round(time.Millisecond), len(stuck))

	// The stuck jobs wait, with the reason, on no attempt.
	enginetest.Eventually(t, 10*time.Second, "the stuck jobs' waiting reason", func() bool {
		for _, id := range []string{stuck[0], stuck[len(stuck)-1]} {
			j, err := r.d.Get(context.Background(), id)
			if err != nil || j.State != job.StateQueued || j.Attempt != 0 || j.Reason != "waiting for a host: no host available ("+engines.Engines[0].Name+": labels do not match; ghost: isolated)" {
				return false
			}
		}
		return true
	})
	// The reason is the job's, not a transition: its history stays short.
	if ts, err := r.d.Transitions(context.Background(), stuck[0]); err != nil || len(ts) != 1 {
		t.Fatalf("transitions of a waiting job: %+v, %v; want the submission alone", ts, err)
	}
	if _, err := r.d.Cancel(context.Background(), free.ID); err != nil {
		t.Fatal(err)
	}
	r.wait(free.ID, 30*time.Second)
}

// Issue 7.7: a backoff under a second takes what it says, not a second.
func TestSubSecondBackoff(t *testing.T) {
	engines := enginetest.Shared(t, 1)
	// No health checks: the ghost host's breaker stays closed until launches
	// on it fail, so the job goes there and fails over to it again.
	r := newRig(t, engines, rigOptions{noHealth: true, extra: []fleet.HostConfig{ghost(t, "ghost")}})
	s := r.spec("exit", "0")
	s.Constraints = map[string]string{"pool": "ghost"}
	s.RetryBackoff = job.Duration(200 * time.Millisecond)
	j := r.submit(s)

	var ts []job.Transition
	enginetest.Eventually(t, 15*time.Second, "a relaunch after the backoff", func() bool {
		var err error
		ts, err = r.d.Transitions(context.Background(), j.ID)
		if err != nil {
			return false
		}
		for i := 1; i+1 < len(ts); i++ {
			if ts[i].From == job.StateLaunching && ts[i].To == job.StateQueued && ts[i+1].To == job.StateLaunching {
				return true
			}
		}
		return false
	})
	for i := 1; i+1 < len(ts); i++ {
		if ts[i].From == job.StateLaunching && ts[i].To == job.StateQueued && ts[i+1].To == job.StateLaunching {
			gap := ts[i+1].At.Sub(ts[i].At)
			t.Logf("requeued %q; relaunched %v later", ts[i].Reason, gap)
			// 200ms with 20% jitter: at least 160ms, and well under the
			// second the scheduler used to sleep.
			if gap < 150*time.Millisecond || gap > 700*time.Millisecond {
				t.Fatalf("relaunched %v after a 200ms backoff; transitions %+v", gap, ts)
			}
			break
		}
	}
	if _, err := r.d.Cancel(context.Background(), j.ID); err != nil {
		t.Logf("cancel: %v", err)
	}
}

// Issue 7.16: finished jobs older than the retention go, with their
// transitions, attempts and logs; young and unfinished ones stay.
func TestRetention(t *testing.T) {
	engines := enginetest.Shared(t, 1)
	r := newRig(t, engines, rigOptions{dispatch: dispatch.Config{Retention: time.Minute},
		extra: []fleet.HostConfig{ghost(t, "ghost")}})
	ctx := context.Background()
	young := r.wait(r.submit(r.spec("print", "hello")).ID, 60*time.Second)

	// Jobs from long ago, written straight into the store.
	long := time.Now().Add(-10 * 24 * time.Hour)
	insert := func(id string, created time.Time, cons map[string]string) {
		t.Helper()
		s := r.spec("exit", "0")
		s.Constraints = cons
		if _, _, err := r.store.JobInsert(ctx, store.JobInsertParams{Job: &job.Job{ID: id, Spec: s, CreatedAt: created}}); err != nil {
			t.Fatal(err)
		}
	}
	finish := func(id string, at time.Time) {
		t.Helper()
		insert(id, at, map[string]string{"pool": "ghost"})
		for _, p := range []store.JobTransitionParams{
			{From: []job.State{job.StateQueued}, To: job.StateLaunching, SetAttempt: store.Ptr(1), Host: store.Ptr("ghost")},
			{From: []job.State{job.StateLaunching}, To: job.StateRunning},
			{From: []job.State{job.StateRunning}, To: job.StateSucceeded, FinishedAt: &at},
		} {
			p.ID, p.Now, p.Reason = id, at, "long ago"
			if _, err := r.store.JobTransition(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.store.LogsSet(ctx, id, job.Logs{Stdout: []byte("old output")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.fleet.Isolate("ghost"); err != nil {
		t.Fatal(err)
	}
	finish("old-finished", long)
	finish("recently-finished", time.Now().Add(-30*time.Second))
	insert("old-queued", long, map[string]string{"pool": "ghost"}) // waits for the isolated host

	enginetest.Eventually(t, 10*time.Second, "the old finished job deleted", func() bool {
		_, err := r.d.Get(ctx, "old-finished")
		return err != nil
	})
	if _, err := r.d.Get(ctx, "old-finished"); !errorsIsNotFound(err) {
		t.Fatalf("old finished job: %v, want not found", err)
	}
	if _, err := r.d.Transitions(ctx, "old-finished"); !errorsIsNotFound(err) {
		t.Fatalf("transitions of the old finished job: %v", err)
	}
	if _, err := r.d.Attempts(ctx, "old-finished"); !errorsIsNotFound(err) {
		t.Fatalf("attempts of the old finished job: %v", err)
	}
	if _, err := r.d.Logs(ctx, "old-finished"); !errorsIsNotFound(err) {
		t.Fatalf("logs of the old finished job: %v", err)
	}
	for _, id := range []string{young.ID, "recently-finished", "old-queued"} {
		j, err := r.d.Get(ctx, id)
		if err != nil {
			t.Fatalf("job %s was deleted: %v", id, err)
		}
		if ts, err := r.d.Transitions(ctx, id); err != nil || len(ts) == 0 {
			t.Fatalf("transitions of kept job %s: %v", id, err)
		}
		if j.State.Terminal() {
			if _, err := r.d.Logs(ctx, id); err != nil {
				t.Fatalf("logs of kept job %s: %v", id, err)
			}
		}
	}
	if j, _ := r.d.Get(ctx, "old-queued"); j.State != job.StateQueued {
		t.Fatalf("old queued job: %+v", j)
	}
}

func errorsIsNotFound(err error) bool { return errors.Is(err, job.ErrNotFound) }
