package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"fusebox/internal/apiclient"
	"fusebox/internal/enginetest"
	"fusebox/internal/job"
	"fusebox/internal/store"
	"fusebox/internal/workflow"
)

// Via says which address of each engine fusebox is given, and so which
// faults it sees.
type Via int

const (
	ViaUnix    Via = iota // the daemon's own socket: process faults (kill, hang, restart)
	ViaProxy              // the toxiproxy in front of its tcp listener: resets, latency, black hole
	ViaAnswers            // the answer proxy in front of its socket: answers lost after the daemon acted
)

// Defaults of Setup.
const (
	EnginesDefault   = 3
	CapacityDefault  = 2
	MaxQueuedDefault = 1000
	// SubmitPatience is how long a submission is retried (with the same
	// idempotency key) while fusebox does not answer, before it counts as
	// unanswered.
	SubmitPatience = 90 * time.Second
)

// Setup is the fleet and fusebox configuration of a scenario. The zero
// value of a field means its default.
type Setup struct {
	Engines   int    // private engines (EnginesDefault)
	Via       Via    // which address fusebox uses for them
	Capacity  int    // jobs at once per host (CapacityDefault)
	MaxQueued int    // queue.max_queued_jobs (MaxQueuedDefault)
	Extra     string // more of fusebox.yaml, appended
}

// Rig is one scenario's world: private engines, one fusebox serve, the
// engines' own accounts of what ran, and every submission made.
type Rig struct {
	TB      testing.TB
	Name    string
	Engines *enginetest.Fleet
	Image   *enginetest.Image
	Server  *Server
	Client  *apiclient.Client // for control and reading; submissions use their own
	Addr    string

	attempts *enginetest.Creates   // containers created, by "<job>/<attempt>"
	perJob   *enginetest.Creates   // containers created, by job
	perStep  *enginetest.Creates   // containers created, by "<run>/<step>"
	lives    *enginetest.Lifetimes // container runs, by job

	mu    sync.Mutex
	subs  []*Submission
	runs  []string // workflow runs started
	next  int      // the next submission's number
	loads sync.WaitGroup
}

// Submission is one job a client asked for, and what it was answered.
type Submission struct {
	N       int
	Key     string    // idempotency key: retries while fusebox is down are the same submission
	Want    job.State // how it is meant to end: succeeded, or failed (exit 3)
	At      time.Time // first try
	Tries   int
	JobID   string // accepted
	Refused string // refused: the API's error code (or HTTP status)
	Lost    string // neither: the last error once SubmitPatience passed
}

// NewRig starts s.Engines private engines and fusebox serve on them, and
// watches the engines' events. Everything stops when tb ends.
func NewRig(tb testing.TB, bin, name string, s Setup) *Rig {
	tb.Helper()
	if s.Engines == 0 {
		s.Engines = EnginesDefault
	}
	if s.Capacity == 0 {
		s.Capacity = CapacityDefault
	}
	if s.MaxQueued == 0 {
		s.MaxQueued = MaxQueuedDefault
	}
	engines := enginetest.ForTest(tb, s.Engines)
	enginetest.RequireFaults(tb, engines)
	r := &Rig{TB: tb, Name: name, Engines: engines, Image: enginetest.TestImage(tb)}
	dir := tb.TempDir()
	addr, err := FreeAddr()
	if err != nil {
		tb.Fatal(err)
	}
	r.Addr = addr
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "listen: %s\ndata_dir: %s\nlog_level: info\npoll_interval: 200ms\nqueue: {max_queued_jobs: %d}\nhosts:\n", addr, dir, s.MaxQueued)
	for _, e := range engines.Engines {
		a := e.UnixHost()
		switch s.Via {
		case ViaProxy:
			a = e.ProxyHost()
		case ViaAnswers:
			a = e.AnswerProxyHost()
		}
		fmt.Fprintf(&cfg, "  - {name: %s, address: %q, capacity: %d, network_mode: none}\n", e.Name, a, s.Capacity)
	}
	cfg.WriteString(s.Extra)
	cfgPath := filepath.Join(dir, "fusebox.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	managed := map[string]string{job.LabelManaged: "true"}
	r.attempts = enginetest.WatchCreates(tb, engines, managed, func(l map[string]string) string {
		return l[job.LabelJobID] + "/" + l[job.LabelAttempt]
	})
	r.perJob = enginetest.WatchCreates(tb, engines, managed, func(l map[string]string) string { return l[job.LabelJobID] })
	r.perStep = enginetest.WatchCreates(tb, engines, managed, func(l map[string]string) string {
		return l[workflow.LabelRun] + "/" + l[workflow.LabelStep]
	})
	r.lives = enginetest.WatchLifetimes(tb, engines, managed, func(l map[string]string) string { return l[job.LabelJobID] })

	r.Server = &Server{Bin: bin, ConfigPath: cfgPath, LogPath: filepath.Join(dir, "serve.log")}
	r.Client = newClient(addr)
	tb.Cleanup(func() {
		_ = r.Server.Kill()
		if tb.Failed() {
			tb.Logf("fusebox log (%s):\n%s", r.Server.LogPath, tail(r.Server.Log(), 200))
		}
	})
	if err := r.Server.Start(); err != nil {
		tb.Fatal(err)
	}
	if err := r.Server.WaitHealthy(context.Background(), r.Client); err != nil {
		tb.Fatalf("%v\n%s", err, r.Server.Log())
	}
	return r
}

// newClient is an API client with its own connections, as a separate
// program's would be.
func newClient(addr string) *apiclient.Client {
	c := apiclient.New("http://"+addr, "")
	c.HTTPClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	c.Timeout = 20 * time.Second
	return c
}

func tail(s string, lines int) string {
	ls := strings.Split(s, "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// KillServer SIGKILLs fusebox serve and starts it again on the same data,
// waiting until it answers.
func (r *Rig) KillServer(ctx context.Context) error {
	if err := r.Server.Kill(); err != nil {
		return err
	}
	if err := r.Server.Start(); err != nil {
		return err
	}
	return r.Server.WaitHealthy(ctx, r.Client)
}

// Maker gives the n-th job of a load and how it is meant to end.
type Maker func(n int) (job.Spec, job.State)

// Sleeper makes jobs that sleep d and print; every tenth exits 3 instead,
// the job's own failure (it must count against nobody).
func (r *Rig) Sleeper(d time.Duration) Maker {
	return func(n int) (job.Spec, job.State) {
		cmd := []string{"/usr/local/bin/fusebox-testjob", "sleep", d.String(), "print", "job " + strconv.Itoa(n)}
		want := job.StateSucceeded
		if n%10 == 9 {
			cmd, want = append(cmd, "exit", "3"), job.StateFailed
		}
		return job.Spec{Image: r.Image.Ref, Command: cmd}, want
	}
}

// Submit submits the next job of mk through c and records the answer.
// A submission fusebox does not answer (it is down, or restarting: no
// connection, or 503) is tried again with the same idempotency key until
// SubmitPatience passes; any other answer is final.
func (r *Rig) Submit(ctx context.Context, c *apiclient.Client, mk Maker) *Submission {
	r.mu.Lock()
	n := r.next
	r.next++
	r.mu.Unlock()
	spec, want := mk(n)
	spec.IdempotencyKey = fmt.Sprintf("chaos-%s-%d", r.Name, n)
	s := &Submission{N: n, Key: spec.IdempotencyKey, Want: want, At: time.Now()}
	deadline := s.At.Add(SubmitPatience)
	for {
		s.Tries++
		j, _, err := c.Submit(ctx, spec)
		var ae *apiclient.Error
		switch {
		case err == nil:
			s.JobID = j.ID
		case errors.As(err, &ae) && ae.Status != http.StatusServiceUnavailable:
			s.Refused = ae.Code
			if s.Refused == "" {
				s.Refused = strconv.Itoa(ae.Status)
			}
		case time.Now().After(deadline) || ctx.Err() != nil:
			s.Lost = err.Error()
		default:
			t := time.NewTimer(100 * time.Millisecond) // fusebox is down: try again soon
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			continue
		}
		break
	}
	r.mu.Lock()
	r.subs = append(r.subs, s)
	r.mu.Unlock()
	return s
}

// Load submits jobs of mk at rate per second, each submission in its
// own goroutine (one fusebox does not answer yet is retried while the
// next go on), until the returned stop is called. stop waits for the
// submissions in flight.
func (r *Rig) Load(ctx context.Context, rate float64, mk Maker) (stop func()) {
	c := newClient(r.Addr)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	r.loads.Add(1)
	go func() {
		defer r.loads.Done()
		t := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer t.Stop()
		for {
			wg.Go(func() { r.Submit(ctx, c, mk) })
			select {
			case <-quit:
				wg.Wait()
				return
			case <-ctx.Done():
				wg.Wait()
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(quit) })
		r.loads.Wait()
	}
}

// Burst submits n jobs of mk at once and returns when each has its
// answer: a backlog, so that jobs wait in the queue when a fault strikes.
func (r *Rig) Burst(ctx context.Context, n int, mk Maker) {
	c := newClient(r.Addr)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { r.Submit(ctx, c, mk) })
	}
	wg.Wait()
}

// Storm submits total jobs of mk from clients concurrent clients, each
// with its own connections, as fast as fusebox answers, and returns when
// every one has its answer.
func (r *Rig) Storm(ctx context.Context, clients, total int, mk Maker) {
	var mu sync.Mutex
	left := total
	var wg sync.WaitGroup
	for range clients {
		c := newClient(r.Addr)
		wg.Go(func() {
			for {
				mu.Lock()
				if left == 0 || ctx.Err() != nil {
					mu.Unlock()
					return
				}
				left--
				mu.Unlock()
				r.Submit(ctx, c, mk)
			}
		})
	}
	wg.Wait()
}

// AddRun records a workflow run the scenario started: Collect counts its
// steps' jobs.
func (r *Rig) AddRun(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs = append(r.runs, id)
}

// Runs returns the workflow runs the scenario started.
func (r *Rig) Runs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.runs...)
}

// Running returns how many jobs run on host ("": anywhere) now.
func (r *Rig) Running(ctx context.Context, host string) (int, error) {
	js, err := r.Client.List(ctx, store.JobListParams{States: []job.State{job.StateRunning}, Host: host, Limit: 500})
	return len(js), err
}

// WaitRunning waits until at least n jobs run on host ("": anywhere) and
// at least queued wait in the queue.
func (r *Rig) WaitRunning(ctx context.Context, host string, n, queued int) error {
	return until(ctx, 2*time.Minute, fmt.Sprintf("%d jobs run on %q and %d wait", n, host, queued), func() (bool, error) {
		got, err := r.Running(ctx, host)
		if err != nil || got < n {
			return false, nil // fusebox may be restarting
		}
		if queued == 0 {
			return true, nil
		}
		q, err := r.Client.Queue(ctx)
		return err == nil && q.Queued >= queued, nil
	})
}

// Engine returns the engine named name.
func (r *Rig) Engine(name string) *enginetest.Engine {
	for _, e := range r.Engines.Engines {
		if e.Name == name {
			return e
		}
	}
	r.TB.Fatalf("chaos: no engine %q", name)
	return nil
}

// Hold waits d: how long a fault lasts (its duration by design, not a
// wait for something to happen), or less if ctx ends.
func Hold(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
