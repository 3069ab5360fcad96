package dispatch_test

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
	"fusebox/internal/fleet"
	"fusebox/internal/job"
	"fusebox/internal/store/sqlite"
)

func TestMain(m *testing.M) { enginetest.Main(m) }

const testjob = "/usr/local/bin/fusebox-testjob"

// rig is a dispatcher over real engines and a real SQLite file, with
// deadlines and breaker times shrunk so failures show in seconds.
type rig struct {
	t       *testing.T
	engines *enginetest.Fleet
	fleet   *fleet.Fleet
	store   *sqlite.DB
	d       *dispatch.Dispatcher
	img     *enginetest.Image
	dbPath  string
	dcfg    dispatch.Config
	fcfg    fleet.Config
	sopts   sqlite.Options
}

type rigOptions struct {
	dispatch dispatch.Config
	capacity int
	health   fleet.HealthConfig
	breaker  breaker.Settings
	noHealth bool // no background health checks: the breakers see only job traffic
	timeouts *engine.Timeouts
	extra    []fleet.HostConfig // hosts besides the engines (e.g. one that does not exist)
	// addr picks the address fusebox uses for an engine; default its unix
	// socket. The answer proxy (e.AnswerProxyHost) loses answers.
	addr  func(e *enginetest.Engine) string
	store sqlite.Options
}

func newRig(t *testing.T, engines *enginetest.Fleet, o rigOptions) *rig {
	t.Helper()
	r := &rig{t: t, engines: engines, img: enginetest.TestImage(t), dbPath: filepath.Join(t.TempDir(), "fusebox.db")}
	if o.capacity == 0 {
		o.capacity = 4
	}
	if o.health.Interval == 0 {
		o.health = fleet.HealthConfig{Interval: 100 * time.Millisecond, Timeout: time.Second, Jitter: 0.1}
	}
	if o.breaker.ConsecutiveFailures == 0 {
		o.breaker = breaker.Settings{ConsecutiveFailures: 3, OpenDuration: time.Second, MaxOpenDuration: 2 * time.Second, Jitter: -1}
	}
	timeouts := engine.Timeouts{Create: 10 * time.Second, Start: 10 * time.Second, Inspect: time.Second, ImageInspect: time.Second, List: 2 * time.Second, Logs: 2 * time.Second, Remove: 2 * time.Second, Stop: 2 * time.Second}
	if o.timeouts != nil {
		timeouts = *o.timeouts
	}
	if o.addr == nil {
		o.addr = (*enginetest.Engine).UnixHost
	}
	for _, e := range engines.Engines {
		r.fcfg.Hosts = append(r.fcfg.Hosts, fleet.HostConfig{
			Name: e.Name, Capacity: o.capacity, Labels: map[string]string{"engine": e.Name}, // constraints can pin a job
			Engine: engine.Config{Address: o.addr(e), NetworkMode: "none", Timeouts: timeouts},
		})
	}
	r.sopts = o.store
	r.fcfg.Hosts = append(r.fcfg.Hosts, o.extra...)
	r.fcfg.Health = o.health
	r.fcfg.DisableHealthChecks = o.noHealth
	r.fcfg.Breaker = o.breaker
	r.dcfg = o.dispatch
	if r.dcfg.PollInterval == 0 {
		r.dcfg.PollInterval = 200 * time.Millisecond
	}
	if r.dcfg.Backoff == 0 {
		r.dcfg.Backoff = 100 * time.Millisecond
	}
	if r.dcfg.StopGrace == 0 {
		r.dcfg.StopGrace = time.Second
	}
	if os.Getenv("FUSEBOX_TEST_LOG") != "" {
		l := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		if r.dcfg.Logger == nil {
			r.dcfg.Logger = l
		}
		r.fcfg.Logger = l
	}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *rig) start() {
	r.t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, r.dbPath, r.sopts)
	if err != nil {
		r.t.Fatal(err)
	}
	fl, err := fleet.New(r.fcfg)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := fl.Start(ctx); err != nil {
		r.t.Fatal(err)
	}
	d := dispatch.New(r.dcfg, db, fl)
	if err := d.Start(ctx); err != nil {
		r.t.Fatal(err)
	}
	r.store, r.fleet, r.d = db, fl, d
}

func (r *rig) stop() {
	if r.d == nil {
		return
	}
	r.d.Stop()
	r.fleet.Stop()
	r.store.Close()
	r.d = nil
}

func (r *rig) spec(args ...string) job.Spec {
	return job.Spec{Image: r.img.Ref, Command: append([]string{testjob}, args...)}
}

func (r *rig) submit(s job.Spec) *job.Job {
	r.t.Helper()
	j, _, err := r.d.Submit(context.Background(), s)
	if err != nil {
		r.t.Fatalf("submit: %v", err)
	}
	return j
}

// wait polls until the job is terminal.
func (r *rig) wait(id string, timeout time.Duration) *job.Job {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		j, err := r.d.Get(context.Background(), id)
		if err != nil {
			r.t.Fatal(err)
		}
		if j.State.Terminal() {
			return j
		}
		if time.Now().After(deadline) {
			tr, _ := r.d.Transitions(context.Background(), id)
			r.t.Fatalf("job %s still %s (%s) after %v; transitions %+v", id, j.State, j.Reason, timeout, tr)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (r *rig) waitState(id string, want job.State, timeout time.Duration) *job.Job {
	r.t.Helper()
	var j *job.Job
	enginetest.Eventually(r.t, timeout, "job "+id+" "+string(want), func() bool {
		var err error
		j, err = r.d.Get(context.Background(), id)
		return err == nil && j.State == want
	})
	return j
}

// countCreates counts container creations per job attempt (key
// "<job id>/<attempt>") from the engines' own events.
func countCreates(t *testing.T, engines *enginetest.Fleet) *enginetest.Creates {
	return enginetest.WatchCreates(t, engines, map[string]string{job.LabelManaged: "true"}, func(l map[string]string) string {
		return l[job.LabelJobID] + "/" + l[job.LabelAttempt]
	})
}

func creates(c *enginetest.Creates, jobID string, attempt int) int {
	return c.Count(jobID + "/" + strconv.Itoa(attempt))
}

func openStore(r *rig) (*sqlite.DB, error) { return sqlite.Open(context.Background(), r.dbPath) }
