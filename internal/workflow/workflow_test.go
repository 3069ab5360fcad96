package workflow_test

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"path"
	"strings"
	"testing"
	"time"

	"fusebox/breaker"
	"fusebox/internal/dispatch"
	"fusebox/internal/engine"
	"fusebox/internal/enginetest"
	"fusebox/internal/fleet"
	"fusebox/internal/job"
	"fusebox/internal/workflow"
	"fusebox/internal/workflow/def"
	"fusebox/internal/workflow/wfrun"
)

// readFile returns the content of the file named name in an artifact.
func (r *rig) readFile(digest, name string) string {
	r.t.Helper()
	rc, _, err := r.arts.Open(digest)
	if err != nil {
		r.t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			r.t.Fatalf("artifact %s has no file %s", digest, name)
		}
		if err != nil {
			r.t.Fatal(err)
		}
		if path.Base(h.Name) == name && h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				r.t.Fatal(err)
			}
			return string(b)
		}
	}
}

// diamond: a writes a seed; b (on the first engine) and c (on the second)
// each read it, sleep, and write their line; d reads both and writes them
// with their checksum. cLine is what c appends.
func (r *rig) diamond(cLine string) *def.Resolved {
	e1, e2 := r.engines.Engines[0].Name, r.engines.Engines[1].Name
	a := r.sh("a", "mkdir -p /out && echo seed > /out/x.txt")
	a.Outputs = []string{"/out"}
	b := r.sh("b", "sleep 2 && mkdir -p /out && (cat /in/x.txt; echo b) > /out/b.txt")
	b.Inputs, b.Outputs, b.Constraints = []def.Input{{From: "a", Path: "/out", At: "/in"}}, []string{"/out"}, map[string]string{"engine": e1}
	c := r.sh("c", "sleep 2 && mkdir -p /out && (cat /in/x.txt; echo "+cLine+") > /out/c.txt")
	c.Inputs, c.Outputs, c.Constraints = []def.Input{{From: "a", Path: "/out", At: "/in"}}, []string{"/out"}, map[string]string{"engine": e2}
	d := r.sh("d", "mkdir -p /res && cat /b/b.txt /c/c.txt > /res/all.txt && sha256sum /res/all.txt | cut -d' ' -f1 > /res/sum")
	d.Inputs = []def.Input{{From: "b", Path: "/out", At: "/b"}, {From: "c", Path: "/out", At: "/c"}}
	d.Outputs = []string{"/res"}
	w := resolved("diamond", a, b, c, d)
	w.Results = []def.Output{{Step: "d", Path: "/res"}}
	return w
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// The diamond runs b and c at the same time on different hosts, passes
// files from a to both and from both to d, whose checksum is right; run
// again it is all cached with no job and the same digests; a change of c's
// command re-runs only c and d, each saying which key part changed.
func TestDiamondRunsInParallelThenCachedThenOnlyWhatChanged(t *testing.T) {
	r := newRig(t, enginetest.Shared(t, 2), rigOptions{})
	start := time.Now()
	run, steps := r.wait(r.submit(workflow.SubmitRequest{Workflow: r.diamond("c"), TaskID: "task-1"}).ID, 2*time.Minute)
	took := time.Since(start)
	if run.State != wfrun.RunSucceeded || run.TaskID != "task-1" {
		t.Fatalf("run: %s", dump(run, nil))
	}
	t.Logf("diamond run took %v", took)
	jb, jc := r.jobsOf(run.ID, "b"), r.jobsOf(run.ID, "c")
	if len(jb) != 1 || len(jc) != 1 {
		t.Fatalf("jobs of b: %d, of c: %d; want one each", len(jb), len(jc))
	}
	if jb[0].Host == jc[0].Host {
		t.Fatalf("b and c ran on the same host %s", jb[0].Host)
	}
	if !(jb[0].StartedAt.Before(jc[0].FinishedAt) && jc[0].StartedAt.Before(jb[0].FinishedAt)) {
		t.Fatalf("b ran %v-%v, c ran %v-%v: not at the same time", jb[0].StartedAt, jb[0].FinishedAt, jc[0].StartedAt, jc[0].FinishedAt)
	}
	for _, id := range []string{"a", "b", "c", "d"} {
		if s := steps[id]; s.State != wfrun.StepSucceeded || s.Try != 1 || s.WhyRan != "first run" || s.CacheKey == "" {
			t.Fatalf("step %s: %+v", id, s)
		}
	}
	if len(run.Results) != 1 || run.Results[0].Step != "d" || run.Results[0].Path != "/res" {
		t.Fatalf("results: %+v", run.Results)
	}
	all := "seed\nb\nseed\nc\n"
	if got := r.readFile(run.Results[0].Digest, "all.txt"); got != all {
		t.Fatalf("d's all.txt = %q, want %q", got, all)
	}
	if got := strings.TrimSpace(r.readFile(run.Results[0].Digest, "sum")); got != sum(all) {
		t.Fatalf("d's checksum = %q, want %q", got, sum(all))
	}

	// Again, unchanged: every step cached, no job, the same digests.
	jobs := r.jobCount()
	start = time.Now()
	again, againSteps := r.wait(r.submit(workflow.SubmitRequest{Workflow: r.diamond("c")}).ID, time.Minute)
	t.Logf("cached re-run took %v", time.Since(start))
	if again.State != wfrun.RunSucceeded || r.jobCount() != jobs {
		t.Fatalf("cached re-run: %s; jobs %d -> %d", dump(again, nil), jobs, r.jobCount())
	}
	for _, id := range []string{"a", "b", "c", "d"} {
		s := againSteps[id]
		if s.State != wfrun.StepCached || !s.Cached || s.JobID != "" || !sameOutputs(s.Outputs, steps[id].Outputs) {
			t.Fatalf("step %s re-run: %+v, first run %+v", id, s, steps[id].Outputs)
		}
	}
	if again.Results[0].Digest != run.Results[0].Digest {
		t.Fatalf("cached result %s, first %s", again.Results[0].Digest, run.Results[0].Digest)
	}

	// c's command changes: a and b are cached, c and d run and say why.
	changed, chSteps := r.wait(r.submit(workflow.SubmitRequest{Workflow: r.diamond("c2")}).ID, 2*time.Minute)
	if changed.State != wfrun.RunSucceeded {
		t.Fatalf("changed run: %s", dump(changed, nil))
	}
	want := map[string]struct {
		state wfrun.StepState
		why   string
	}{
		"a": {wfrun.StepCached, ""}, "b": {wfrun.StepCached, ""},
		"c": {wfrun.StepSucceeded, "command changed"}, "d": {wfrun.StepSucceeded, "input /c (from c) changed"},
	}
	for id, w := range want {
		if s := chSteps[id]; s.State != w.state || s.WhyRan != w.why {
			t.Fatalf("step %s after c changed: %s, why %q; want %s, why %q", id, s.State, s.WhyRan, w.state, w.why)
		}
	}
	if got := r.readFile(changed.Results[0].Digest, "all.txt"); got != "seed\nb\nseed\nc2\n" {
		t.Fatalf("d's all.txt after the change = %q", got)
	}
	if n := len(r.jobsOf(changed.ID, "a")) + len(r.jobsOf(changed.ID, "b")); n != 0 {
		t.Fatalf("a and b ran %d jobs after only c changed", n)
	}

	// skip-cache runs every step, and says so.
	skipped, skSteps := r.wait(r.submit(workflow.SubmitRequest{Workflow: r.diamond("c2"), SkipCache: true}).ID, 2*time.Minute)
	if skipped.State != wfrun.RunSucceeded || skSteps["a"].State != wfrun.StepSucceeded || skSteps["a"].WhyRan != "skip-cache" {
		t.Fatalf("skip-cache run: %s", dump(skipped, nil))
	}
}

func sameOutputs(a, b []job.Output) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Two runs of the same workflow at once run its cached step once: the
// second waits for the first and hits its entry.
func TestIdenticalStepsInFlightRunOnce(t *testing.T) {
	r := newRig(t, enginetest.Shared(t, 2), rigOptions{})
	s := r.sh("slow", "sleep 1 && mkdir -p /out && echo once > /out/f")
	s.Outputs = []string{"/out"}
	w := resolved("single-flight", s)
	one := r.submit(workflow.SubmitRequest{Workflow: w})
	two := r.submit(workflow.SubmitRequest{Workflow: w})
	a, as := r.wait(one.ID, time.Minute)
	b, bs := r.wait(two.ID, time.Minute)
	if a.State != wfrun.RunSucceeded || b.State != wfrun.RunSucceeded {
		t.Fatalf("runs: %s / %s", dump(a, nil), dump(b, nil))
	}
	jobs := len(r.jobsOf(one.ID, "slow")) + len(r.jobsOf(two.ID, "slow"))
	if jobs != 1 {
		t.Fatalf("the identical step ran %d jobs, want 1", jobs)
	}
	if as["slow"].Cached == bs["slow"].Cached || !sameOutputs(as["slow"].Outputs, bs["slow"].Outputs) {
		t.Fatalf("steps: %+v / %+v; want one run, one cached with the same outputs", as["slow"], bs["slow"])
	}
}

// A step that fails by its own exit twice, then succeeds, ends with 3
// tries; the delays before tries 2 and 3 are within the jitter bounds of
// factor × 2^(n-1).
func TestStepRetriesItsOwnFailureWithBackoff(t *testing.T) {
	r := newRig(t, enginetest.Shared(t, 1), rigOptions{})
	s := r.sh("flaky", `[ "$`+workflow.EnvTry+`" -ge 3 ] || exit 7`)
	s.Cache = false
	s.Retries = def.Retries{Max: 3, BackoffFactor: 0.5, Jitter: true}
	run, steps := r.wait(r.submit(workflow.SubmitRequest{Workflow: resolved("flaky", s)}).ID, 2*time.Minute)
	st := steps["flaky"]
	if run.State != wfrun.RunSucceeded || st.State != wfrun.StepSucceeded || st.Try != 3 || st.WhyRan != "cache off" {
		t.Fatalf("run: %s", dump(run, []wfrun.Step{st}))
	}
	jobs := r.jobsOf(run.ID, "flaky")
	if len(jobs) != 3 {
		t.Fatalf("%d jobs, want 3", len(jobs))
	}
	for i, j := range jobs {
		wantKey := "wf/" + run.ID + "/flaky/" + string(rune('1'+i))
		if j.Spec.IdempotencyKey != wantKey || j.Spec.Env[workflow.EnvTry] != string(rune('1'+i)) {
			t.Fatalf("job %d: key %q env %v", i, j.Spec.IdempotencyKey, j.Spec.Env)
		}
		if i < 2 && (j.State != job.StateFailed || j.Cause != job.CauseExit) {
			t.Fatalf("try %d: %s %s", i+1, j.State, j.Cause)
		}
	}
	const slack = 1500 * time.Millisecond // noticing the end, submitting, the store
	for n := 1; n <= 2; n++ {
		base := time.Duration(0.5 * float64(int(1)<<(n-1)) * float64(time.Second))
		gap := jobs[n].CreatedAt.Sub(jobs[n-1].FinishedAt)
		if gap < base/2 || gap > base*3/2+slack {
			t.Fatalf("delay before try %d: %v, want within [%v, %v] (+%v)", n+1, gap, base/2, base*3/2, slack)
		}
		t.Logf("delay before try %d: %v (base %v)", n+1, gap, base)
	}
}

// ghost is a configured host that does not exist.
func ghost(t *testing.T) fleet.HostConfig {
	return fleet.HostConfig{Name: "ghost", Labels: map[string]string{"pool": "ghost"}, Capacity: 4,
		Engine: engine.Config{Address: "unix://" + t.TempDir() + "/nobody.sock"}}
}

// A workflow whose step always fails opens its breaker after the threshold:
// the next run is refused at once with a retry-after; after the open time
// one probe run goes through and its success closes it. A workflow whose
// runs fail only because no host can take them does not trip.
func TestBreakerCountsOwnFailuresNotTheFleets(t *testing.T) {
	r := newRig(t, enginetest.Shared(t, 1), rigOptions{dispatch: dispatch.Config{NoDegradation: true}, extra: []fleet.HostConfig{ghost(t)}})
	if err := r.fleet.Isolate("ghost"); err != nil {
		t.Fatal(err)
	}
	bad := r.sh("s", "exit 3")
	bad.Cache = false
	w := resolved("always-fails", bad)
	w.UseCircuitBreaker = true
	w.CircuitBreaker = def.Breaker{FailureThreshold: 2, ResetTimeout: 2 * time.Second}
	for i := range 2 {
		run, steps := r.wait(r.submit(workflow.SubmitRequest{Workflow: w}).ID, time.Minute)
		if run.State != wfrun.RunFailed || run.Cause != wfrun.CauseOwn || steps["s"].JobCause != job.CauseExit {
			t.Fatalf("run %d: %s cause %s", i, dump(run, nil), run.Cause)
		}
	}
	t0 := time.Now()
	_, err := r.runner.Submit(context.Background(), workflow.SubmitRequest{Workflow: w})
	took := time.Since(t0)
	var oe *breaker.OpenError
	if !errors.As(err, &oe) || oe.RetryAfter <= 0 || oe.Name != "workflow/always-fails" {
		t.Fatalf("third submit = %v; want the breaker's OpenError with a retry-after", err)
	}
	if took > 100*time.Millisecond {
		t.Fatalf("refusal took %v, want under 100ms", took)
	}
	t.Logf("refused in %v: %v", took, err)
	if n := len(mustList(t, r, "always-fails")); n != 2 {
		t.Fatalf("%d runs stored, want 2 (the refused one stores nothing)", n)
	}

	// Fixed, after the open time: one probe run, whose success closes it.
	fixed := resolved("always-fails", r.sh("s", "true"))
	fixed.UseCircuitBreaker, fixed.CircuitBreaker = true, w.CircuitBreaker
	var probe *wfrun.Run
	enginetest.Eventually(t, 10*time.Second, "the breaker to admit a probe", func() bool {
		run, err := r.runner.Submit(context.Background(), workflow.SubmitRequest{Workflow: fixed})
		probe = run
		return err == nil
	}, nil)
	if run, _ := r.wait(probe.ID, time.Minute); run.State != wfrun.RunSucceeded {
		t.Fatalf("probe run: %s", dump(run, nil))
	}
	b, _ := r.reg.Lookup("workflow/always-fails")
	if b == nil || b.State() != breaker.StateClosed {
		t.Fatalf("breaker after the probe's success: %v", b.State())
	}

	// No host can take it: the fleet's failure, three times, no trip.
	nh := r.sh("s", "true")
	nh.Cache, nh.Constraints = false, map[string]string{"pool": "ghost"}
	wn := resolved("no-host", nh)
	wn.UseCircuitBreaker = true
	wn.CircuitBreaker = def.Breaker{FailureThreshold: 2, ResetTimeout: time.Minute}
	for i := range 3 {
		run, steps := r.wait(r.submit(workflow.SubmitRequest{Workflow: wn}).ID, time.Minute)
		if run.State != wfrun.RunFailed || run.Cause != wfrun.CauseFleet || steps["s"].JobCause != job.CauseNoHost || steps["s"].Try != 1 {
			t.Fatalf("no-host run %d: %s cause %s, step %+v", i, dump(run, nil), run.Cause, steps["s"])
		}
	}
	if b, _ := r.reg.Lookup("workflow/no-host"); b.State() != breaker.StateClosed {
		t.Fatalf("no-host breaker: %v, want closed", b.State())
	}

	// Off per run: the open breaker is not asked.
	off := false
	for range 2 {
		r.wait(r.submit(workflow.SubmitRequest{Workflow: w}).ID, time.Minute)
	}
	if _, err := r.runner.Submit(context.Background(), workflow.SubmitRequest{Workflow: w}); !errors.Is(err, breaker.ErrOpen) {
		t.Fatalf("after two more failures: %v, want open", err)
	}
	if _, err := r.runner.Submit(context.Background(), workflow.SubmitRequest{Workflow: w, UseCircuitBreaker: &off}); err != nil {
		t.Fatalf("submit with the breaker off: %v", err)
	}
}

func mustList(t *testing.T, r *rig, workflowName string) []*wfrun.Run {
	runs, err := r.runner.List(context.Background(), storeList(workflowName))
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

// A runner stopped mid-run and a new one on the same store: the run
// completes, and no finished step ran twice.
func TestResumeAfterRestartRunsNothingTwice(t *testing.T) {
	r := newRig(t, enginetest.Shared(t, 2), rigOptions{})
	a := r.sh("a", "mkdir -p /out && echo one > /out/f")
	a.Outputs = []string{"/out"}
	b := r.sh("b", "sleep 3 && cat /in/f")
	b.Inputs = []def.Input{{From: "a", Path: "/out", At: "/in"}}
	c := def.Step{ID: "c", Image: r.img.Ref, Command: []string{testjob, "print", "done"}, DependsOn: []string{"b"}}
	run := r.submit(workflow.SubmitRequest{Workflow: resolved("resume", a, b, c)})
	enginetest.Eventually(t, time.Minute, "b to run", func() bool {
		_, steps, err := r.runner.Get(context.Background(), run.ID)
		return err == nil && byID(steps)["b"].State == wfrun.StepRunning
	}, nil)
	r.runner.Stop()
	r.runner.Stop() // twice is harmless
	r.startRunner()
	got, steps := r.wait(run.ID, time.Minute)
	if got.State != wfrun.RunSucceeded {
		t.Fatalf("resumed run: %s", dump(got, nil))
	}
	for _, id := range []string{"a", "b", "c"} {
		if n := len(r.jobsOf(run.ID, id)); n != 1 || steps[id].Try != 1 {
			t.Fatalf("step %s: %d jobs, try %d; want 1 and 1", id, n, steps[id].Try)
		}
	}
}

// Cancel ends a run: its running step's job is cancelled, the rest
// skipped; a run's timeout does the same.
func TestCancelAndTimeout(t *testing.T) {
	r := newRig(t, enginetest.Shared(t, 1), rigOptions{})
	long := r.sh("long", "sleep 60")
	long.Cache = false
	after := r.sh("after", "true")
	after.DependsOn = []string{"long"}
	run := r.submit(workflow.SubmitRequest{Workflow: resolved("cancel-me", long, after)})
	enginetest.Eventually(t, time.Minute, "long to run", func() bool {
		_, steps, err := r.runner.Get(context.Background(), run.ID)
		return err == nil && byID(steps)["long"].State == wfrun.StepRunning
	}, nil)
	if _, err := r.runner.Cancel(context.Background(), run.ID); err != nil {
		t.Fatal(err)
	}
	got, steps := r.wait(run.ID, 30*time.Second)
	if got.State != wfrun.RunCancelled || got.Cause != wfrun.CauseCancelled || steps["long"].State != wfrun.StepCancelled || steps["after"].State != wfrun.StepSkipped {
		t.Fatalf("cancelled run: %s", dump(got, nil))
	}
	enginetest.Eventually(t, 30*time.Second, "the job to be cancelled", func() bool {
		j, err := r.d.Get(context.Background(), steps["long"].JobID)
		return err == nil && j.State == job.StateCancelled
	}, nil)
	if _, err := r.runner.Cancel(context.Background(), run.ID); !errors.Is(err, job.ErrTerminal) {
		t.Fatalf("second cancel: %v, want job.ErrTerminal", err)
	}

	w := resolved("times-out", long, after)
	w.Timeout = time.Second
	got, steps = r.wait(r.submit(workflow.SubmitRequest{Workflow: w}).ID, 30*time.Second)
	if got.State != wfrun.RunFailed || got.Cause != wfrun.CauseTimeout || steps["after"].State != wfrun.StepSkipped {
		t.Fatalf("timed-out run: %s", dump(got, nil))
	}
}

// A run resumed by a new runner has lost its breaker token: its own
// failure still counts, on a token it asks for anew.
func TestResumedRunStillCountsAgainstItsBreaker(t *testing.T) {
	r := newRig(t, enginetest.Shared(t, 1), rigOptions{})
	s := r.sh("s", "sleep 2 && exit 1")
	s.Cache = false
	w := resolved("resumed-failure", s)
	w.UseCircuitBreaker = true
	w.CircuitBreaker = def.Breaker{FailureThreshold: 1, ResetTimeout: time.Minute}
	run := r.submit(workflow.SubmitRequest{Workflow: w})
	enginetest.Eventually(t, time.Minute, "s to run", func() bool {
		_, steps, err := r.runner.Get(context.Background(), run.ID)
		return err == nil && byID(steps)["s"].State == wfrun.StepRunning
	}, nil)
	r.runner.Stop()
	r.startRunner()
	if got, _ := r.wait(run.ID, time.Minute); got.State != wfrun.RunFailed || got.Cause != wfrun.CauseOwn {
		t.Fatalf("resumed run: %s", dump(got, nil))
	}
	if _, err := r.runner.Submit(context.Background(), workflow.SubmitRequest{Workflow: w}); !errors.Is(err, breaker.ErrOpen) {
		t.Fatalf("submit after the resumed run's failure: %v, want the breaker open", err)
	}
}

// A step whose host hangs mid-run fails over inside its job (the
// dispatcher's attempts) and uses no step retry.
func TestHostFailureFailsOverWithoutAStepRetry(t *testing.T) {
	engines := enginetest.ForTest(t, 2)
	enginetest.RequireFaults(t, engines)
	r := newRig(t, engines, rigOptions{dispatch: dispatch.Config{LostAfter: 2 * time.Second, ReconcileInterval: 500 * time.Millisecond}})
	s := def.Step{ID: "s", Image: r.img.Ref, Command: []string{testjob, "sleep", "4s", "print", "finished"},
		Retries: def.Retries{Max: 2, BackoffFactor: 0.1}}
	run := r.submit(workflow.SubmitRequest{Workflow: resolved("host-hangs", s)})
	var host string
	enginetest.Eventually(t, time.Minute, "s to run", func() bool {
		_, steps, err := r.runner.Get(context.Background(), run.ID)
		host = byID(steps)["s"].Host
		return err == nil && byID(steps)["s"].State == wfrun.StepRunning
	}, nil)
	for _, e := range engines.Engines {
		if e.Name == host {
			if err := e.Hang(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = e.Resume() })
		}
	}
	got, steps := r.wait(run.ID, 2*time.Minute)
	st := steps["s"]
	jobs := r.jobsOf(run.ID, "s")
	if got.State != wfrun.RunSucceeded || st.Try != 1 || len(jobs) != 1 || jobs[0].Attempt != 2 || jobs[0].Host == host || st.Host == host {
		t.Fatalf("run: %s; %d jobs, attempt %d on %s (hung %s)", dump(got, []wfrun.Step{st}), len(jobs), jobs[0].Attempt, jobs[0].Host, host)
	}
}
