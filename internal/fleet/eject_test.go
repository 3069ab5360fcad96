package fleet_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"fusebox/breaker"
	"fusebox/internal/engine"
	"fusebox/internal/enginetest"
	"fusebox/internal/fleet"
)

// slowFleet starts a fleet over three private engines reached through
// their fault proxies, with health checks that eject fast and keep an
// ejected host out for the whole test.
func slowFleet(t *testing.T, maxEjected int) (*fleet.Fleet, *enginetest.Fleet) {
	t.Helper()
	engines := enginetest.ForTest(t, 3)
	enginetest.RequireFaults(t, engines)
	var hosts []fleet.HostConfig
	for _, e := range engines.Engines {
		hosts = append(hosts, fleet.HostConfig{Name: e.Name, Capacity: 1, Engine: engine.Config{Address: e.ProxyHost()}})
	}
	f, err := fleet.New(fleet.Config{
		Hosts: hosts,
		Health: fleet.HealthConfig{Interval: 200 * time.Millisecond, Timeout: time.Second, UnhealthyThreshold: 2,
			UnhealthyInterval: 100 * time.Millisecond, BaseEjectionTime: time.Minute, Jitter: -1, MaxEjectedPercent: maxEjected},
		Breaker: breaker.Settings{ConsecutiveFailures: 100, OpenDuration: time.Minute, MaxOpenDuration: time.Minute, Jitter: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	return f, engines
}

func states(f *fleet.Fleet) map[string]fleet.HostStatus {
	out := map[string]fleet.HostStatus{}
	for _, st := range f.Statuses() {
		out[st.Name] = st
	}
	return out
}

// Two of three hosts slowed past the health checks' timeout, with
// max_ejected_percent 50: one is ejected, the other is kept in (degraded,
// saying why, placed after the healthy host) and keeps getting work.
func TestEjectionForSlownessIsCapped(t *testing.T) {
	f, engines := slowFleet(t, 50)
	slow1, slow2, fast := engines.Engines[0], engines.Engines[1], engines.Engines[2]
	for _, e := range []*enginetest.Engine{slow1, slow2} {
		if err := e.AddLatency(1500 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	var kept fleet.HostStatus
	enginetest.Eventually(t, 20*time.Second, "one slow host ejected and the other kept, degraded", func() bool {
		st := states(f)
		open, keptN := 0, 0
		for _, e := range []*enginetest.Engine{slow1, slow2} {
			switch s := st[e.Name]; {
			case s.Breaker.State == breaker.StateOpen:
				open++
			case s.State == fleet.HostDegraded && strings.Contains(s.Reason, "max_ejected_percent"):
				keptN++
				kept = s
			}
		}
		return open == 1 && keptN == 1 && st[fast.Name].State == fleet.HostHealthy
	})
	for _, s := range states(f) {
		// The ejected host and the slow one kept in are spared (their logs
		// wait, their polls are spaced out); the fast one is not.
		want := s.Name != fast.Name
		got := slices.Contains(s.Degradation, fleet.ModeLogsDeferred) && slices.Contains(s.Degradation, fleet.ModePollsStretched)
		if got != want {
			t.Errorf("host %s (breaker %s): degradation modes %v", s.Name, s.Breaker.State, s.Degradation)
		}
	}
	t.Logf("kept in: %s: %s", kept.Name, kept.Reason)

	// The healthy host is placed first; with it full the kept one gets work.
	l1, err := f.Place(fleet.Request{})
	if err != nil || l1.Host().Name() != fast.Name {
		t.Fatalf("first placement: %v %v; want %s", l1, err, fast.Name)
	}
	l2, err := f.Place(fleet.Request{})
	if err != nil || l2.Host().Name() != kept.Name {
		t.Fatalf("second placement: %v %v; want the kept host %s", l2, err, kept.Name)
	}
	l1.Done(nil)
	l2.Done(nil)
}

// Every host slow, no cap: all but the last are ejected (a panic
// threshold): fusebox keeps one to use rather than ejecting them all.
func TestEveryHostSlowKeepsTheLastIn(t *testing.T) {
	f, engines := slowFleet(t, 100)
	for _, e := range engines.Engines {
		if err := e.AddLatency(1500 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	enginetest.Eventually(t, 45*time.Second, "two hosts ejected, the last kept in", func() bool {
		open, lastIn := 0, 0
		for _, s := range states(f) {
			switch {
			case s.Breaker.State == breaker.StateOpen:
				open++
			case strings.Contains(s.Reason, "last of 3 hosts"):
				lastIn++
			}
		}
		return open == 2 && lastIn == 1
	}, func() string {
		var out []string
		for _, s := range states(f) {
			out = append(out, fmt.Sprintf("%s: %s, breaker %s (%s)", s.Name, s.State, s.Breaker.State, s.Reason))
		}
		return strings.Join(out, "; ")
	})
}

// A host that is out is spared (its logs wait, its polls are spaced out)
// only with graceful degradation: without it its status lists no such mode.
func TestDegradationModesFollowGracefulDegradation(t *testing.T) {
	for _, off := range []bool{false, true} {
		f, err := fleet.New(fleet.Config{
			Hosts:               []fleet.HostConfig{{Name: "h", Engine: engine.Config{Address: "unix:///nonexistent/docker.sock"}}},
			DisableHealthChecks: true,
			NoDegradation:       off,
		})
		if err != nil {
			t.Fatal(err)
		}
		h := f.Host("h")
		if got := h.Status().Degradation; len(got) != 0 {
			t.Fatalf("a healthy host spared: %v", got)
		}
		h.Breaker().Trip(time.Minute)
		got := h.Status().Degradation
		if want := !off; slices.Contains(got, fleet.ModeLogsDeferred) != want || slices.Contains(got, fleet.ModePollsStretched) != want {
			t.Errorf("NoDegradation %v, breaker open: modes %v", off, got)
		}
		f.Stop()
	}
}
