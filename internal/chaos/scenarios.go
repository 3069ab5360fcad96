package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"fusebox/internal/api"
	"fusebox/internal/enginetest"
	"fusebox/internal/job"
	"fusebox/internal/workflow/wfrun"
)

// Sizes are the durations and counts of the scenarios: the short form runs
// in make test, the full form in make chaos. The scenarios' code is the
// same for both.
type Sizes struct {
	Form         string        // "short" or "full"
	EngineHold   time.Duration // how long an engine stays killed or SIGSTOPped
	ProxyHold    time.Duration // how long a proxy fault lasts
	AllDown      time.Duration // how long every engine is down
	AllDownQueue int           // max_queued_jobs while they are
	AllDownRate  float64       // submissions per second meanwhile
	After        time.Duration // load that goes on once a fault is over
	Rate         float64       // submissions per second of a steady load
	JobSleep     time.Duration // how long a job of a steady load runs
	ServerKills  int           // fusebox SIGKILLs in a row
	Runs         int           // workflow runs under the kills
	Storm        int           // submissions of the storm
	StormClients int           // its concurrent clients
	StormQueue   int           // max_queued_jobs during it
	Drain        time.Duration // how long every job may take to end afterwards
	// BreakerRecovery is circuit_breaker.recovery_timeout (0: fusebox's
	// default, 60s): the short form shortens how long a host whose calls
	// failed stays open, so that its scenarios end sooner.
	BreakerRecovery time.Duration
	Parallel        int // scenarios at once (each on its own engines and fusebox)
}

// Short is the form make test runs: a few minutes on two cores.
func Short() Sizes {
	return Sizes{Form: "short", EngineHold: 5 * time.Second, ProxyHold: 5 * time.Second,
		AllDown: 10 * time.Second, AllDownQueue: 30, AllDownRate: 8, After: time.Second,
		Rate: 3, JobSleep: time.Second, ServerKills: 3, Runs: 2,
		Storm: 500, StormClients: 16, StormQueue: 100, Drain: 3 * time.Minute,
		BreakerRecovery: 10 * time.Second, Parallel: 3}
}

// Full is the form make chaos runs.
func Full() Sizes {
	return Sizes{Form: "full", EngineHold: 30 * time.Second, ProxyHold: 30 * time.Second,
		AllDown: time.Minute, AllDownQueue: 200, AllDownRate: 10, After: 5 * time.Second,
		Rate: 3, JobSleep: 2 * time.Second, ServerKills: 3, Runs: 4,
		Storm: 5000, StormClients: 16, StormQueue: 1000, Drain: 15 * time.Minute,
		Parallel: 1}
}

// Scenario is one scripted fault.
type Scenario struct {
	Name  string
	Fault string // what it does, in a few words
	Setup Setup
	// Run drives the load and the faults, and returns once the load is
	// stopped (Collect then waits for the jobs to end).
	Run func(ctx context.Context, r *Rig) error
	// Check adds the scenario's own expectations to f, after Collect.
	Check func(ctx context.Context, r *Rig, f *Figures)
}

// Scenarios are every scenario in sz's form, in the order they run.
func Scenarios(sz Sizes) []Scenario {
	secs := func(d time.Duration) string { return fmt.Sprintf("%gs", d.Seconds()) }
	return []Scenario{
		{
			Name:  "engine-kill",
			Fault: fmt.Sprintf("e1 SIGKILLed with jobs running and queued, restarted after %s", secs(sz.EngineHold)),
			Run: func(ctx context.Context, r *Rig) error {
				return r.engineFault(ctx, sz, "e1", 1, func(e *enginetest.Engine) (func() error, error) {
					return func() error { return e.Restart(ctx) }, e.Kill()
				})
			},
		},
		{
			Name:  "engine-hang",
			Fault: fmt.Sprintf("e1 SIGSTOPped with jobs running for %s, then SIGCONT", secs(sz.EngineHold)),
			Run: func(ctx context.Context, r *Rig) error {
				return r.engineFault(ctx, sz, "e1", 1, func(e *enginetest.Engine) (func() error, error) {
					return e.Resume, e.Hang()
				})
			},
		},
		{
			Name:  "engine-restart",
			Fault: "e1 restarted with jobs running (its containers stop)",
			Run: func(ctx context.Context, r *Rig) error {
				return r.engineFault(ctx, sz, "e1", 1, func(e *enginetest.Engine) (func() error, error) {
					return func() error { return nil }, e.Restart(ctx)
				})
			},
		},
		{
			Name:  "proxy-resets",
			Fault: fmt.Sprintf("30%% of connections to every engine reset, for %s", secs(sz.ProxyHold)),
			Setup: Setup{Via: ViaProxy},
			Run: func(ctx context.Context, r *Rig) error {
				return r.proxyFault(ctx, sz, r.Engines.Engines, func(e *enginetest.Engine) error { return e.ResetSomePeers(0.3) })
			},
		},
		{
			Name:  "proxy-latency",
			Fault: fmt.Sprintf("2s latency on every answer of e1, for %s", secs(sz.ProxyHold)),
			Setup: Setup{Via: ViaProxy},
			Run: func(ctx context.Context, r *Rig) error {
				return r.proxyFault(ctx, sz, r.Engines.Engines[:1], func(e *enginetest.Engine) error { return e.AddLatency(2 * time.Second) })
			},
		},
		{
			Name:  "proxy-blackhole",
			Fault: fmt.Sprintf("e1 behind a black hole (connections taken, never answered), for %s", secs(sz.ProxyHold)),
			Setup: Setup{Via: ViaProxy},
			Run: func(ctx context.Context, r *Rig) error {
				return r.proxyFault(ctx, sz, r.Engines.Engines[:1], func(e *enginetest.Engine) error { return e.Blackhole() })
			},
		},
		{
			Name:  "answers-dropped",
			Fault: "answers dropped after the daemon acted: 2 creates on e1, 2 starts on e2, 2 removes on e3",
			Setup: Setup{Via: ViaAnswers},
			Run:   func(ctx context.Context, r *Rig) error { return r.answersDropped(ctx, sz) },
		},
		{
			Name:  "serve-kill",
			Fault: fmt.Sprintf("fusebox SIGKILLed mid-load and restarted, %d times in a row", sz.ServerKills),
			Run:   func(ctx context.Context, r *Rig) error { return r.serverKills(ctx, sz) },
		},
		{
			Name:  "serve-kill-workflow",
			Fault: fmt.Sprintf("fusebox SIGKILLed and restarted %d times while %d diamond workflow runs go", sz.ServerKills, sz.Runs),
			Run:   func(ctx context.Context, r *Rig) error { return r.workflowKills(ctx, sz) },
			Check: checkRuns,
		},
		{
			Name: "all-engines-down",
			Fault: fmt.Sprintf("every engine SIGKILLed for %s, %g submissions/s, max_queued_jobs %d",
				secs(sz.AllDown), sz.AllDownRate, sz.AllDownQueue),
			Setup: Setup{MaxQueued: sz.AllDownQueue},
			Run:   func(ctx context.Context, r *Rig) error { return r.allDown(ctx, sz) },
			Check: func(_ context.Context, _ *Rig, f *Figures) {
				if f.Refused[api.CodeQueueFull] == 0 {
					f.Fail("the queue limit was never reached")
				}
				if f.FailedFleet > 0 {
					f.Fail("%d jobs failed for the fleet: with every host out they must wait", f.FailedFleet)
				}
			},
		},
		{
			Name:  "submit-storm",
			Fault: fmt.Sprintf("%d submissions from %d concurrent clients, max_queued_jobs %d", sz.Storm, sz.StormClients, sz.StormQueue),
			Setup: Setup{MaxQueued: sz.StormQueue, Capacity: 4},
			Run: func(ctx context.Context, r *Rig) error {
				r.Storm(ctx, sz.StormClients, sz.Storm, r.Sleeper(0))
				return nil
			},
			Check: func(_ context.Context, _ *Rig, f *Figures) {
				if f.Refused[api.CodeQueueFull] == 0 {
					f.Fail("no submission was refused: the queue limit was never reached")
				}
				for k := range f.Refused {
					if k != api.CodeQueueFull {
						f.Fail("submissions refused for %s, not only a full queue", k)
					}
				}
			},
		},
	}
}

// Run runs sc on a new rig and returns its figures with the verdict.
func Run(tb testing.TB, bin string, sz Sizes, sc Scenario) *Figures {
	tb.Helper()
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*sz.Drain+10*time.Minute)
	defer cancel()
	setup := sc.Setup
	if sz.BreakerRecovery > 0 {
		setup.Extra += fmt.Sprintf("circuit_breaker: {recovery_timeout: %s}\n", sz.BreakerRecovery)
	}
	r := NewRig(tb, bin, sc.Name, setup)
	runErr := sc.Run(ctx, r)
	f := r.Collect(ctx, sz.Drain)
	f.Fault = sc.Fault
	if runErr != nil {
		f.Fail("%v", runErr)
	}
	f.Verdict()
	if sc.Check != nil {
		sc.Check(ctx, r, f)
	}
	f.Took = time.Since(began)
	return f
}

// engineFault submits a backlog and runs a steady load, does the fault to engine name once it
// runs at least running jobs and some wait (a fault that returns its
// undo), holds it EngineHold, undoes it, and goes on After before the load
// stops.
func (r *Rig) engineFault(ctx context.Context, sz Sizes, name string, running int, fault func(*enginetest.Engine) (undo func() error, err error)) error {
	r.Burst(ctx, 2*len(r.Engines.Engines)*CapacityDefault, r.Sleeper(sz.JobSleep))
	stop := r.Load(ctx, sz.Rate, r.Sleeper(sz.JobSleep))
	defer stop()
	if err := r.WaitRunning(ctx, name, running, 1); err != nil {
		return err
	}
	undo, err := fault(r.Engine(name))
	if err != nil {
		return err
	}
	Hold(ctx, sz.EngineHold)
	if err := undo(); err != nil {
		return err
	}
	Hold(ctx, sz.After)
	return nil
}

// proxyFault runs a steady load, puts fault on engines once jobs run on
// the first, holds it ProxyHold, clears it, and goes on After.
func (r *Rig) proxyFault(ctx context.Context, sz Sizes, engines []*enginetest.Engine, fault func(*enginetest.Engine) error) error {
	stop := r.Load(ctx, sz.Rate, r.Sleeper(sz.JobSleep))
	defer stop()
	if err := r.WaitRunning(ctx, engines[0].Name, 1, 0); err != nil {
		return err
	}
	for _, e := range engines {
		if err := fault(e); err != nil {
			return err
		}
	}
	Hold(ctx, sz.ProxyHold)
	for _, e := range engines {
		if err := e.ClearFaults(); err != nil {
			return err
		}
	}
	Hold(ctx, sz.After)
	return nil
}

// answersDropped runs a steady load while the daemons' answers to creates,
// starts and removes are lost after they acted, until each fault was hit.
func (r *Rig) answersDropped(ctx context.Context, sz Sizes) error {
	stop := r.Load(ctx, sz.Rate, r.Sleeper(sz.JobSleep))
	defer stop()
	es := r.Engines.Engines
	faults := []struct {
		e     *enginetest.Engine
		route enginetest.Route
	}{
		{es[0], enginetest.Route{Method: "POST", Path: `^/containers/create$`}},
		{es[1], enginetest.Route{Method: "POST", Path: `^/containers/[^/]+/start$`}},
		{es[2%len(es)], enginetest.Route{Method: "DELETE", Path: `^/containers/[^/]+$`}},
	}
	var hit []*enginetest.AnswerFault
	for _, f := range faults {
		af, err := f.e.DropAnswers(f.route, 2)
		if err != nil {
			return err
		}
		hit = append(hit, af)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for _, af := range hit {
		if err := af.Wait(wctx, 2); err != nil {
			return fmt.Errorf("chaos: %s was not hit twice: %w", af, err)
		}
	}
	Hold(ctx, sz.After)
	return nil
}

// serverKills SIGKILLs fusebox under a steady load ServerKills times, each
// time once jobs run and wait, and starts it again.
func (r *Rig) serverKills(ctx context.Context, sz Sizes) error {
	stop := r.Load(ctx, sz.Rate+1, r.Sleeper(sz.JobSleep))
	defer stop()
	for range sz.ServerKills {
		if err := r.WaitRunning(ctx, "", 2, 1); err != nil {
			return err
		}
		if err := r.KillServer(ctx); err != nil {
			return err
		}
		Hold(ctx, sz.After) // load between two kills
	}
	Hold(ctx, sz.After)
	return nil
}

// diamond is a -> (b, c) -> d, each step slow enough to be killed under,
// its files passed between hosts; %[2]d makes each run's commands its own
// (no cache hits between runs).
const diamond = `name: chaos-diamond
defaults: {image: %[1]s}
steps:
  - id: a
    command: ["sh", "-c", "mkdir -p /out && echo run-%[2]d > /out/a && sleep 2"]
    outputs: [/out]
  - id: b
    inputs: [{from: a, path: /out, at: /in}]
    command: ["sh", "-c", "sleep 2; mkdir -p /out && sed s/^/b-/ /in/a > /out/b"]
    outputs: [/out]
  - id: c
    inputs: [{from: a, path: /out, at: /in}]
    command: ["sh", "-c", "sleep 2; mkdir -p /out && sed s/^/c-/ /in/a > /out/c"]
    outputs: [/out]
  - id: d
    inputs: [{from: b, path: /out, at: /in/b}, {from: c, path: /out, at: /in/c}]
    command: ["sh", "-c", "sleep 1; cat /in/b/b /in/c/c"]
`

// workflowKills starts Runs diamond runs under a light job load and
// SIGKILLs fusebox ServerKills times, each time while a step runs that did
// not run at the previous kill, then waits for the runs to end.
func (r *Rig) workflowKills(ctx context.Context, sz Sizes) error {
	for i := range sz.Runs {
		run, err := r.Client.StartWorkflow(ctx, api.WorkflowRunRequest{Definition: fmt.Sprintf(diamond, r.Image.Ref, i)})
		if err != nil {
			return fmt.Errorf("chaos: start run %d: %w", i, err)
		}
		r.AddRun(run.ID)
	}
	stop := r.Load(ctx, 1, r.Sleeper(sz.JobSleep))
	defer stop()
	last := ""
	for k := range sz.ServerKills {
		var running string
		err := until(ctx, 2*time.Minute, "a step runs that did not at the last kill", func() (bool, error) {
			running = ""
			for _, id := range r.Runs() {
				run, err := r.Client.WorkflowRun(ctx, id)
				if err != nil {
					return false, nil // fusebox may be restarting
				}
				for _, s := range run.Steps {
					if s.State == wfrun.StepRunning && s.JobID != "" {
						if d, err := r.Client.Get(ctx, s.JobID); err == nil && d.Job.State == job.StateRunning {
							running += id + "/" + s.ID + " "
						}
					}
				}
			}
			return running != "" && running != last, nil
		})
		if err != nil {
			return fmt.Errorf("chaos: kill %d: %w", k+1, err)
		}
		last = running
		if err := r.KillServer(ctx); err != nil {
			return err
		}
	}
	return until(ctx, sz.Drain, "every workflow run ended", func() (bool, error) {
		for _, id := range r.Runs() {
			run, err := r.Client.WorkflowRun(ctx, id)
			if err != nil || !run.State.Terminal() {
				return false, nil
			}
		}
		return true, nil
	})
}

// checkRuns: every run succeeded, each step in its first try with no
// container outside its job, and the files passed through the kills.
func checkRuns(ctx context.Context, r *Rig, f *Figures) {
	ok := 0
	for _, id := range r.Runs() {
		run, err := r.Client.WorkflowRun(ctx, id)
		if err != nil {
			f.Fail("run %s: %v", id, err)
			continue
		}
		if run.State != wfrun.RunSucceeded {
			f.Fail("run %s ended %s: %s", id, run.State, run.Reason)
			continue
		}
		ok++
		for _, s := range run.Steps {
			if n, m := r.perStep.Count(id+"/"+s.ID), r.perJob.Count(s.JobID); s.Try != 1 || n != m {
				f.Fail("run %s step %s: try %d, %d containers for the step and %d for its job; want try 1 and no container outside its job", id, s.ID, s.Try, n, m)
			}
		}
		i := slices.IndexFunc(run.Steps, func(s api.WorkflowStep) bool { return s.ID == "d" })
		if i < 0 {
			f.Fail("run %s has no step d", id)
			continue
		}
		logs, err := r.Client.Logs(ctx, run.Steps[i].JobID)
		if want := fmt.Sprintf("b-run-%d\nc-run-%d\n", runIndex(r, id), runIndex(r, id)); err != nil || string(logs.Stdout) != want {
			f.Fail("run %s: d printed %q (%v), want %q", id, logs.Stdout, err, want)
		}
	}
	f.Fault += fmt.Sprintf(" (runs succeeded: %d of %d)", ok, len(r.Runs()))
}

func runIndex(r *Rig, id string) int { return slices.Index(r.Runs(), id) }

// allDown runs a steady load, kills every engine once jobs run, holds
// AllDown while the queue fills to its limit, restarts them all and goes
// on After.
func (r *Rig) allDown(ctx context.Context, sz Sizes) error {
	stop := r.Load(ctx, sz.AllDownRate, r.Sleeper(500*time.Millisecond))
	defer stop()
	if err := r.WaitRunning(ctx, "", 2, 0); err != nil {
		return err
	}
	var errs []error
	for _, e := range r.Engines.Engines {
		errs = append(errs, e.Kill())
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	Hold(ctx, sz.AllDown)
	for _, e := range r.Engines.Engines {
		errs = append(errs, e.Restart(ctx))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	Hold(ctx, sz.After)
	return nil
}

// Describe is the one line that says what the form's sizes are.
func (sz Sizes) Describe() string {
	recovery := "60s (default)"
	if sz.BreakerRecovery > 0 {
		recovery = sz.BreakerRecovery.String()
	}
	return strings.Join([]string{
		"form " + sz.Form,
		fmt.Sprintf("engine faults held %v", sz.EngineHold),
		fmt.Sprintf("proxy faults %v", sz.ProxyHold),
		fmt.Sprintf("all engines down %v", sz.AllDown),
		fmt.Sprintf("steady load %g/s of %v jobs (every tenth exits 3)", sz.Rate, sz.JobSleep),
		fmt.Sprintf("storm %d from %d clients, queue %d", sz.Storm, sz.StormClients, sz.StormQueue),
		"circuit_breaker.recovery_timeout " + recovery,
		fmt.Sprintf("%d scenario(s) at once", max(1, sz.Parallel)),
	}, ", ")
}
