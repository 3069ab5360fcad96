package workflow_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"fusebox/breaker"
	"fusebox/internal/dispatch"
	"fusebox/internal/engine"
	"fusebox/internal/enginetest"
	"fusebox/internal/event"
	"fusebox/internal/fleet"
	"fusebox/internal/job"
	"fusebox/internal/store"
	"fusebox/internal/store/sqlite"
	"fusebox/internal/workflow"
	"fusebox/internal/workflow/artifact"
	"fusebox/internal/workflow/def"
	"fusebox/internal/workflow/wfrun"
)

func TestMain(m *testing.M) { enginetest.Main(m) }

const testjob = "/usr/local/bin/fusebox-testjob"

// rig is a runner over a real dispatcher, fleet and engines, a real SQLite
// file, a real event bus and a real artifact store, as internal/server
// wires them, with intervals shrunk for tests.
type rig struct {
	t       *testing.T
	engines *enginetest.Fleet
	img     *enginetest.Image
	st      *sqlite.DB
	bus     *event.Bus
	fleet   *fleet.Fleet
	d       *dispatch.Dispatcher
	arts    *artifact.Store
	reg     *breaker.Registry
	runner  *workflow.Runner
	opts    workflow.Options
}

type rigOptions struct {
	dispatch dispatch.Config
	extra    []fleet.HostConfig
	runner   workflow.Options
}

func newRig(t *testing.T, engines *enginetest.Fleet, o rigOptions) *rig {
	t.Helper()
	ctx := context.Background()
	r := &rig{t: t, engines: engines, img: enginetest.TestImage(t)}
	dir := t.TempDir()
	var err error
	r.st, err = sqlite.Open(ctx, filepath.Join(dir, "fusebox.db"))
	if err != nil {
		t.Fatal(err)
	}
	r.arts, err = artifact.Open(filepath.Join(dir, "artifacts"), artifact.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var logger *slog.Logger
	if os.Getenv("FUSEBOX_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	r.bus = event.New(r.st, logger)
	r.st.SetEventHook(r.bus.Notify)
	if err := r.bus.Start(ctx); err != nil {
		t.Fatal(err)
	}
	timeouts := engine.Timeouts{Create: 10 * time.Second, Start: 10 * time.Second, Inspect: time.Second, ImageInspect: time.Second,
		List: 2 * time.Second, Logs: 2 * time.Second, Remove: 2 * time.Second, Stop: 2 * time.Second}
	fc := fleet.Config{Logger: logger,
		Health:  fleet.HealthConfig{Interval: 100 * time.Millisecond, Timeout: time.Second, Jitter: 0.1},
		Breaker: breaker.Settings{ConsecutiveFailures: 3, OpenDuration: time.Second, MaxOpenDuration: 2 * time.Second, Jitter: -1}}
	for _, e := range engines.Engines {
		fc.Hosts = append(fc.Hosts, fleet.HostConfig{Name: e.Name, Capacity: 4, Labels: map[string]string{"engine": e.Name},
			Engine: engine.Config{Address: e.UnixHost(), NetworkMode: "none", Timeouts: timeouts}})
	}
	fc.Hosts = append(fc.Hosts, o.extra...)
	r.fleet, err = fleet.New(fc)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.fleet.Start(ctx); err != nil {
		t.Fatal(err)
	}
	dc := o.dispatch
	dc.Logger, dc.Events, dc.Artifacts = logger, r.bus, r.arts
	dc.PollInterval, dc.Backoff, dc.StopGrace = 200*time.Millisecond, 100*time.Millisecond, time.Second
	r.d = dispatch.New(dc, r.st, r.fleet)
	if err := r.d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	r.reg, err = breaker.NewRegistry(breaker.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	r.opts = o.runner
	r.opts.Logger = logger
	if r.opts.ReconcileInterval == 0 {
		r.opts.ReconcileInterval = 500 * time.Millisecond
	}
	r.startRunner()
	t.Cleanup(func() {
		r.runner.Stop()
		r.d.Stop()
		r.fleet.Stop()
		r.bus.Stop()
		r.st.Close()
	})
	return r
}

// images resolves image ids on the first engine, as the server does on
// its hosts.
func (r *rig) images() workflow.Images { return r.fleet.Hosts()[0].Client() }

// startRunner starts a new Runner on the rig's store.
func (r *rig) startRunner() {
	r.t.Helper()
	w, err := workflow.New(r.st, r.d, r.bus, r.images(), r.arts, r.reg, r.opts)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	r.runner = w
}

// sh is a step running a shell script in the test image.
func (r *rig) sh(id, script string) def.Step {
	return def.Step{ID: id, Image: r.img.Ref, Command: []string{"sh", "-c", script}, Cache: true}
}

func resolved(name string, steps ...def.Step) *def.Resolved {
	return &def.Resolved{Workflow: def.Workflow{Name: name, CachingEnabled: true, Steps: steps}}
}

func (r *rig) submit(req workflow.SubmitRequest) *wfrun.Run {
	r.t.Helper()
	run, err := r.runner.Submit(context.Background(), req)
	if err != nil {
		r.t.Fatalf("submit: %v", err)
	}
	return run
}

// wait polls until the run has ended.
func (r *rig) wait(id string, timeout time.Duration) (*wfrun.Run, map[string]wfrun.Step) {
	r.t.Helper()
	var run *wfrun.Run
	var steps []wfrun.Step
	enginetest.Eventually(r.t, timeout, "run "+id+" to end", func() bool {
		var err error
		run, steps, err = r.runner.Get(context.Background(), id)
		if err != nil {
			r.t.Fatal(err)
		}
		return run.State.Terminal()
	}, func() string { return dump(run, steps) })
	return run, byID(steps)
}

func byID(steps []wfrun.Step) map[string]wfrun.Step {
	m := map[string]wfrun.Step{}
	for _, s := range steps {
		m[s.ID] = s
	}
	return m
}

func dump(run *wfrun.Run, steps []wfrun.Step) string {
	if run == nil {
		return "no run"
	}
	out := string(run.State) + " (" + run.Reason + ")"
	for _, s := range steps {
		out += "\n  " + s.ID + ": " + string(s.State) + " try " + strconv.Itoa(s.Try) + " (" + s.Reason + ") why " + s.WhyRan
	}
	return out
}

// jobsOf returns the jobs of a run's step, oldest first.
func (r *rig) jobsOf(runID, step string) []*job.Job {
	r.t.Helper()
	all, err := r.st.JobList(context.Background(), store.JobListParams{Limit: 10000})
	if err != nil {
		r.t.Fatal(err)
	}
	var out []*job.Job
	for i := len(all) - 1; i >= 0; i-- {
		j := all[i]
		if j.Spec.Labels[workflow.LabelRun] == runID && j.Spec.Labels[workflow.LabelStep] == step {
			out = append(out, j)
		}
	}
	return out
}

func (r *rig) jobCount() int {
	r.t.Helper()
	all, err := r.st.JobList(context.Background(), store.JobListParams{Limit: 10000})
	if err != nil {
		r.t.Fatal(err)
	}
	return len(all)
}

func storeList(workflowName string) store.WorkflowRunListParams {
	return store.WorkflowRunListParams{Workflow: workflowName}
}
