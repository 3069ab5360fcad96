package fleet_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fusebox/breaker"
	"fusebox/internal/engine"
	"fusebox/internal/enginetest"
	"fusebox/internal/fleet"
)

var detectRounds = flag.Int("detect.rounds", 1, "rounds of TestDefaultsDetectHungAndDeadHosts; with more than one it logs the median hang→open and kill→open times")

// watch returns the breaker transitions of the named host as they happen.
func watch(f *fleet.Fleet, host string) <-chan fleet.Transition {
	ch := make(chan fleet.Transition, 64)
	f.Subscribe(func(tr fleet.Transition) {
		if tr.Host == host {
			ch <- tr
		}
	})
	return ch
}

// waitTo waits for the next transition to state to, skipping others, and
// fails the test if none comes within timeout.
func waitTo(t *testing.T, ch <-chan fleet.Transition, to breaker.State, timeout time.Duration) fleet.Transition {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case tr := <-ch:
			if tr.To == to {
				return tr
			}
		case <-deadline:
			t.Fatalf("no transition to %s within %v", to, timeout)
		}
	}
}

// randomPhase waits for a random part of a check interval: a real fault
// comes at any moment of the check cycle, not just after a check (as it
// would right after the test saw a transition or a status change).
func randomPhase() {
	<-time.After(rand.N(fleet.HealthIntervalDefault))
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// With nothing configured (the fleet's and the breaker's defaults), a hung
// daemon's breaker opens within 5 s and a killed one's within 2 s, each
// comes back by itself (probed and closed) once the daemon is back, and the
// other host never trips. This is also the measuring command of the
// defaults:
//
//	go test -count=1 -run TestDefaultsDetectHungAndDeadHosts -v ./internal/fleet/ -args -detect.rounds=5
//
// logs the median hang→open and kill→open times over 5 rounds (each round
// with a new fleet, so that no trip is remembered from the round before;
// each fault at a random moment of the check cycle).
func TestDefaultsDetectHungAndDeadHosts(t *testing.T) {
	const hangWithin, killWithin = 5 * time.Second, 2 * time.Second
	engines := enginetest.ForTest(t, 2)
	enginetest.RequireFaults(t, engines)
	sick, well := engines.Engines[0], engines.Engines[1]
	var hosts []fleet.HostConfig
	for _, e := range engines.Engines {
		hosts = append(hosts, fleet.HostConfig{Name: e.Name, Engine: engine.Config{Address: e.UnixHost()}})
	}
	var hangs, kills, resumes, restarts []time.Duration
	for round := 1; round <= max(*detectRounds, 1); round++ {
		f, err := fleet.New(fleet.Config{Hosts: hosts})
		if err != nil {
			t.Fatal(err)
		}
		ch := watch(f, sick.Name)
		if err := f.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(f.Stop)
		h := f.Host(sick.Name)
		enginetest.Eventually(t, 10*time.Second, "the host healthy", func() bool { return h.Status().State == fleet.HostHealthy })

		randomPhase()
		at := time.Now()
		if err := sick.Hang(); err != nil {
			t.Fatal(err)
		}
		tr := waitTo(t, ch, breaker.StateOpen, hangWithin+time.Second)
		hangs = append(hangs, tr.At.Sub(at))
		if d := tr.At.Sub(at); d > hangWithin {
			t.Errorf("round %d: a hung host's breaker opened %v after the hang, want within %v", round, d, hangWithin)
		}
		if err := sick.Resume(); err != nil {
			t.Fatal(err)
		}
		at = time.Now()
		tr = waitTo(t, ch, breaker.StateClosed, 30*time.Second)
		resumes = append(resumes, tr.At.Sub(at))

		randomPhase()
		at = time.Now()
		if err := sick.Kill(); err != nil {
			t.Fatal(err)
		}
		tr = waitTo(t, ch, breaker.StateOpen, killWithin+time.Second)
		kills = append(kills, tr.At.Sub(at))
		if d := tr.At.Sub(at); d > killWithin {
			t.Errorf("round %d: a killed host's breaker opened %v after the kill, want within %v", round, d, killWithin)
		}
		if err := sick.Restart(context.Background()); err != nil {
			t.Fatal(err)
		}
		at = time.Now()
		tr = waitTo(t, ch, breaker.StateClosed, 60*time.Second)
		restarts = append(restarts, tr.At.Sub(at))

		for _, tr := range f.Transitions() {
			if tr.Host == well.Name {
				t.Errorf("round %d: the healthy host changed: %+v", round, tr)
			}
		}
		f.Stop()
		t.Logf("round %d: hang→open %v, resume→closed %v, kill→open %v, restart→closed %v", round,
			hangs[round-1].Round(time.Millisecond), resumes[round-1].Round(time.Millisecond),
			kills[round-1].Round(time.Millisecond), restarts[round-1].Round(time.Millisecond))
	}
	t.Logf("defaults over %d rounds: hang→open median %v (max %v), kill→open median %v (max %v), resume→closed median %v, restart→closed median %v",
		len(hangs), median(hangs).Round(time.Millisecond), slices.Max(hangs).Round(time.Millisecond),
		median(kills).Round(time.Millisecond), slices.Max(kills).Round(time.Millisecond),
		median(resumes).Round(time.Millisecond), median(restarts).Round(time.Millisecond))
}

// With the defaults, a healthy host on a loaded machine (containers
// starting and burning CPU on it all the time, on every core) is never
// ejected: the checks' deadline and threshold leave room for a daemon that
// is busy, not hung.
func TestDefaultsDoNotEjectALoadedHost(t *testing.T) {
	const window, workers = 20 * time.Second, 6
	engines := enginetest.ForTest(t, 1)
	img := enginetest.TestImage(t)
	e := engines.Engines[0]
	ec := engine.Config{Name: e.Name, Address: e.UnixHost(), NetworkMode: "none"}
	f, err := fleet.New(fleet.Config{Hosts: []fleet.HostConfig{{Name: e.Name, Engine: ec}}})
	if err != nil {
		t.Fatal(err)
	}
	ch := watch(f, e.Name)
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	h := f.Host(e.Name)
	enginetest.Eventually(t, 10*time.Second, "the host healthy", func() bool { return h.Status().State == fleet.HostHealthy })

	load, err := engine.New(ec)
	if err != nil {
		t.Fatal(err)
	}
	defer load.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var started atomic.Int64
	loadErr := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				if err := runBurner(ctx, load, img.Ref, fmt.Sprintf("fusebox-load-%d-%d", w, i)); err != nil {
					if ctx.Err() == nil {
						loadErr <- err
					}
					return
				}
				started.Add(1)
			}
		})
	}
	defer func() { cancel(); wg.Wait() }()

	var maxLat time.Duration
	var checks int
	last := time.Time{}
	end := time.After(window)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case tr := <-ch:
			t.Fatalf("the loaded host's breaker changed %s -> %s (status %+v)", tr.From, tr.To, h.Status())
		case err := <-loadErr:
			t.Fatalf("load: %v", err)
		case <-tick.C:
			if st := h.Status(); st.LastCheck != last {
				last, checks = st.LastCheck, checks+1
				maxLat = max(maxLat, st.Latency)
			}
		case <-end:
			done = true
		}
	}
	if started.Load() < workers {
		t.Fatalf("only %d containers ran in %v: no load", started.Load(), window)
	}
	t.Logf("%d containers started in %v; %d health checks, slowest %v; host %s",
		started.Load(), window, checks, maxLat.Round(time.Millisecond), h.Status().State)
}

// runBurner runs one container that keeps a CPU busy for a moment, and
// removes it.
func runBurner(ctx context.Context, c *engine.Client, image, name string) error {
	id, err := c.Create(ctx, engine.ContainerSpec{Name: name, Image: image,
		Cmd: []string{enginetest.TestjobPath, "burn", "500ms"}, Labels: map[string]string{"fusebox.test": "load"}})
	if err != nil {
		return err
	}
	defer c.Remove(context.WithoutCancel(ctx), id)
	if err := c.Start(ctx, id); err != nil {
		return err
	}
	_, err = c.Wait(ctx, id)
	return err
}

// A hung engine still accepts connections on its socket; only the health
// checks' deadline tells. They must open its breaker, and after a resume
// probe it and close it again, with no job involved.
func TestHealthChecksOpenAHungHostAndBringItBack(t *testing.T) {
	engines := enginetest.ForTest(t, 2)
	enginetest.RequireFaults(t, engines)
	var hosts []fleet.HostConfig
	for _, e := range engines.Engines {
		hosts = append(hosts, fleet.HostConfig{Name: e.Name, Engine: engine.Config{Address: e.UnixHost()}})
	}
	f, err := fleet.New(fleet.Config{
		Hosts:   hosts,
		Health:  fleet.HealthConfig{Interval: 100 * time.Millisecond, Timeout: time.Second, Jitter: 0.1},
		Breaker: breaker.Settings{ConsecutiveFailures: 2, OpenDuration: 500 * time.Millisecond, Jitter: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	hung, other := f.Host(engines.Engines[0].Name), f.Host(engines.Engines[1].Name)
	enginetest.Eventually(t, 10*time.Second, "both hosts healthy", func() bool {
		return hung.Status().State == fleet.HostHealthy && other.Status().State == fleet.HostHealthy
	})

	if err := engines.Engines[0].Hang(); err != nil {
		t.Fatal(err)
	}
	hungAt := time.Now()
	enginetest.Eventually(t, 10*time.Second, "the hung host's breaker to open", func() bool {
		s := hung.Status().State
		return s == fleet.HostUnavailable || s == fleet.HostProbing
	})
	t.Logf("breaker opened %v after the hang", time.Since(hungAt).Round(time.Millisecond))
	if s := other.Status(); s.Breaker.State != breaker.StateClosed {
		t.Fatalf("the healthy host tripped too: %+v", s.Breaker)
	}
	if _, err := f.Place(fleet.Request{}); err != nil {
		t.Fatalf("placement with one host left: %v", err)
	}

	if err := engines.Engines[0].Resume(); err != nil {
		t.Fatal(err)
	}
	resumedAt := time.Now()
	enginetest.Eventually(t, 15*time.Second, "the resumed host's breaker to close", func() bool {
		return hung.Status().Breaker.State == breaker.StateClosed
	})
	t.Logf("breaker closed %v after the resume", time.Since(resumedAt).Round(time.Millisecond))
	var sawOpen, sawClose bool
	for _, tr := range f.Transitions() {
		if tr.Host == hung.Name() && tr.To == breaker.StateOpen {
			sawOpen = true
		}
		if tr.Host == hung.Name() && tr.From == breaker.StateHalfOpen && tr.To == breaker.StateClosed {
			sawClose = true
		}
	}
	if !sawOpen || !sawClose {
		t.Fatalf("transitions %+v: want open, then half-open -> closed", f.Transitions())
	}
}

// A host that answers ping but cannot start containers (its runtime is
// broken) passes every health check; only the canary catches it. While its
// canary fails it gets no jobs, and when a canary passes it takes jobs
// again.
func TestCanaryKeepsJobsOffAHostThatCannotStartContainers(t *testing.T) {
	engines := enginetest.ForTest(t, 2)
	enginetest.RequireFaults(t, engines)
	img := enginetest.TestImage(t)
	var hosts []fleet.HostConfig
	for _, e := range engines.Engines {
		hosts = append(hosts, fleet.HostConfig{Name: e.Name, Engine: engine.Config{Address: e.UnixHost(), NetworkMode: "none"}})
	}
	f, err := fleet.New(fleet.Config{
		Hosts: hosts,
		Health: fleet.HealthConfig{Interval: 200 * time.Millisecond, Timeout: time.Second,
			Canary: fleet.CanaryConfig{Enabled: true, Image: img.Ref, Interval: time.Hour, Timeout: 20 * time.Second}},
		Breaker: breaker.Settings{ConsecutiveFailures: 5, OpenDuration: time.Second, Jitter: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	broken := engines.Engines[0]
	if err := broken.BreakStarts(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	h := f.Host(broken.Name)
	enginetest.Eventually(t, 30*time.Second, "the broken host's canary to fail", h.CanaryFailing)
	if st := h.Status(); st.State != fleet.HostDegraded {
		t.Fatalf("broken host status %+v", st)
	}
	for range 5 {
		l, err := f.Place(fleet.Request{})
		if err != nil {
			t.Fatal(err)
		}
		if l.Host().Name() == broken.Name {
			t.Fatal("a job was placed on the host whose canary fails")
		}
		l.Done(nil)
		l.Host().Release()
	}
	if f.Host(engines.Engines[1].Name).CanaryFailing() {
		t.Fatal("the healthy host's canary failed")
	}
	if err := broken.FixStarts(context.Background()); err != nil {
		t.Fatal(err)
	}
	enginetest.Eventually(t, 30*time.Second, "the repaired host's canary to pass", func() bool { return !h.CanaryFailing() })
	placed := false
	for range 4 {
		l, err := f.Place(fleet.Request{})
		if err != nil {
			t.Fatal(err)
		}
		placed = placed || l.Host().Name() == broken.Name
		l.Done(nil)
	}
	if !placed {
		t.Fatal("the repaired host took no job")
	}
}

// Docker calls to a host that turns slow (latency added in front of its
// daemon) cut its limit on in-flight calls, and the host shows degraded.
func TestSlowHostGetsFewerCallsInFlight(t *testing.T) {
	engines := enginetest.ForTest(t, 1)
	enginetest.RequireFaults(t, engines)
	e := engines.Engines[0]
	f, err := fleet.New(fleet.Config{
		Hosts:               []fleet.HostConfig{{Name: e.Name, Engine: engine.Config{Address: e.ProxyHost()}}},
		DisableHealthChecks: true,
		Limiter:             fleet.LimiterConfig{Initial: 16},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	h := f.Host(e.Name)
	list := func() error {
		return h.CallBackground(context.Background(), func(ctx context.Context, c *engine.Client) error {
			_, err := c.List(ctx, map[string]string{"fusebox.test": "none"})
			return err
		})
	}
	for range 20 {
		if err := list(); err != nil {
			t.Fatal(err)
		}
	}
	before := h.Status().Calls.Limit
	if err := e.AddLatency(400 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	defer e.ClearFaults()
	for range 8 {
		if err := list(); err != nil {
			t.Fatal(err)
		}
	}
	st := h.Status()
	if st.Calls.Limit >= before/2 || st.State != fleet.HostDegraded {
		t.Fatalf("after slow calls: limit %d (was %d), state %s", st.Calls.Limit, before, st.State)
	}
	t.Logf("in-flight limit %d -> %d; host %s: %s", before, st.Calls.Limit, st.State, st.Reason)
}
