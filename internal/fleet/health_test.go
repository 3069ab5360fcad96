package fleet_test

import (
	"context"
	"testing"
	"time"

	"fusebox/breaker"
	"fusebox/internal/engine"
	"fusebox/internal/enginetest"
	"fusebox/internal/fleet"
)

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
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
	eventually(t, 10*time.Second, "both hosts healthy", func() bool {
		return hung.Status().State == fleet.HostHealthy && other.Status().State == fleet.HostHealthy
	})

	if err := engines.Engines[0].Hang(); err != nil {
		t.Fatal(err)
	}
	hungAt := time.Now()
	eventually(t, 10*time.Second, "the hung host's breaker to open", func() bool {
		s := hung.Status().State
		return s == fleet.HostUnavailable || s == fleet.HostProbing
	})
	t.Logf("breaker opened %v after the hang", time.Since(hungAt).Round(time.Millisecond))
	if s := other.Status(); s.Breaker.State != "closed" {
		t.Fatalf("the healthy host tripped too: %+v", s.Breaker)
	}
	if _, err := f.Place(fleet.Request{}); err != nil {
		t.Fatalf("placement with one host left: %v", err)
	}

	if err := engines.Engines[0].Resume(); err != nil {
		t.Fatal(err)
	}
	resumedAt := time.Now()
	eventually(t, 15*time.Second, "the resumed host's breaker to close", func() bool {
		return hung.Status().Breaker.State == "closed"
	})
	t.Logf("breaker closed %v after the resume", time.Since(resumedAt).Round(time.Millisecond))
	var sawOpen, sawClose bool
	for _, tr := range f.Transitions() {
		if tr.Host == hung.Name() && tr.To == "open" {
			sawOpen = true
		}
		if tr.Host == hung.Name() && tr.From == "half-open" && tr.To == "closed" {
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
	eventually(t, 30*time.Second, "the broken host's canary to fail", h.CanaryFailing)
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
	eventually(t, 30*time.Second, "the repaired host's canary to pass", func() bool { return !h.CanaryFailing() })
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
