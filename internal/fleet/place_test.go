package fleet

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fusebox/breaker"
	"fusebox/internal/engine"
)

// newTestFleet builds a fleet whose hosts point at sockets nobody listens
// on: placement never calls the engines, so these tests need none.
func newTestFleet(t *testing.T, hosts ...HostConfig) *Fleet {
	t.Helper()
	for i := range hosts {
		hosts[i].Engine = engine.Config{Address: "unix:///nonexistent/" + hosts[i].Name + ".sock"}
	}
	f, err := New(Config{Hosts: hosts, DisableHealthChecks: true, Breaker: breaker.Settings{ConsecutiveFailures: 2, Jitter: -1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	return f
}

func mustPlace(t *testing.T, f *Fleet, req Request) *Lease {
	t.Helper()
	l, err := f.Place(req)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestPlaceLeastLoadedByWeight(t *testing.T) {
	f := newTestFleet(t, HostConfig{Name: "a", Capacity: 10, Weight: 1}, HostConfig{Name: "b", Capacity: 10, Weight: 3})
	got := map[string]int{}
	for range 8 {
		l := mustPlace(t, f, Request{})
		l.Done(nil)
		got[l.Host().Name()]++
	}
	// With weight 3 to 1, b takes three jobs for each of a's.
	if got["a"] != 2 || got["b"] != 6 {
		t.Fatalf("placements %v, want a:2 b:6", got)
	}
}

func TestPlaceRespectsConstraintsAndCapacity(t *testing.T) {
	f := newTestFleet(t, HostConfig{Name: "a", Capacity: 1, Labels: map[string]string{"gpu": "yes"}}, HostConfig{Name: "b", Capacity: 2})
	l := mustPlace(t, f, Request{Constraints: map[string]string{"gpu": "yes"}})
	if l.Host().Name() != "a" {
		t.Fatalf("gpu job placed on %s", l.Host().Name())
	}
	_, err := f.Place(Request{Constraints: map[string]string{"gpu": "yes"}})
	var nh *NoHostError
	if !errors.As(err, &nh) || !errors.Is(err, ErrNoHost) {
		t.Fatalf("place on a full host: %v, want *NoHostError", err)
	}
	if nh.Reasons["a"] != "full" || nh.Reasons["b"] != "labels do not match" {
		t.Fatalf("reasons %v", nh.Reasons)
	}
	l.Host().Release()
	mustPlace(t, f, Request{Constraints: map[string]string{"gpu": "yes"}})
	if f.Matches(map[string]string{"gpu": "no"}) {
		t.Fatal("Matches found a host for gpu=no")
	}
}

func TestPlaceAvoidsTheHostThatJustFailed(t *testing.T) {
	f := newTestFleet(t, HostConfig{Name: "a"}, HostConfig{Name: "b"})
	for range 3 {
		l := mustPlace(t, f, Request{Avoid: "a"})
		if l.Host().Name() != "b" {
			t.Fatalf("placed on %s, the avoided host", l.Host().Name())
		}
		l.Done(nil)
		l.Host().Release()
	}
	// The avoided host is still used when nothing else fits.
	f.Isolate("b")
	if l := mustPlace(t, f, Request{Avoid: "a"}); l.Host().Name() != "a" {
		t.Fatalf("placed on %s", l.Host().Name())
	}
}

func TestPlacePrefersHostsWithTheImage(t *testing.T) {
	f := newTestFleet(t, HostConfig{Name: "a"}, HostConfig{Name: "b"})
	f.Host("b").NoteImage("img:1", true)
	if l := mustPlace(t, f, Request{Image: "img:1"}); l.Host().Name() != "b" {
		t.Fatalf("placed on %s, want b which has the image", l.Host().Name())
	}
}

func TestPlaceSkipsOpenHalfOpenIsolatedAndDrainingHosts(t *testing.T) {
	clock := breaker.NewManualClock(time.Now())
	hosts := []HostConfig{{Name: "open"}, {Name: "iso"}, {Name: "drain"}, {Name: "ok"}}
	for i := range hosts {
		hosts[i].Engine = engine.Config{Address: "unix:///nonexistent.sock"}
	}
	f, err := New(Config{Hosts: hosts, DisableHealthChecks: true, Breaker: breaker.Settings{ConsecutiveFailures: 2, Jitter: -1, OpenDuration: time.Minute, Clock: clock}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	hostFault := &engine.Error{Host: "open", Op: "ping", Class: engine.ClassHost, Err: errors.New("refused")}
	for range 2 {
		f.Host("open").Call(context.Background(), func(context.Context, *engine.Client) error { return hostFault })
	}
	f.Isolate("iso")
	f.Drain("drain")
	for range 5 {
		l := mustPlace(t, f, Request{})
		if l.Host().Name() != "ok" {
			t.Fatalf("placed on %s", l.Host().Name())
		}
		l.Done(nil)
		l.Host().Release()
	}
	st := f.Host("open").Status()
	if st.State != HostUnavailable || st.Breaker.State != breaker.StateOpen {
		t.Fatalf("open host status %+v", st)
	}
	clock.Advance(time.Minute)
	if st := f.Host("open").Status(); st.State != HostProbing {
		t.Fatalf("after the open time: %s, want probing", st.State)
	}
	f.Isolate("ok")
	_, err = f.Place(Request{})
	var nh *NoHostError
	if !errors.As(err, &nh) {
		t.Fatalf("got %v", err)
	}
	want := map[string]string{"open": "probing (breaker half-open)", "iso": "isolated", "drain": "draining", "ok": "isolated"}
	for k, v := range want {
		if nh.Reasons[k] != v {
			t.Errorf("reason for %s = %q, want %q", k, nh.Reasons[k], v)
		}
	}
	if got := f.Host("drain").Status().State; got != HostDraining {
		t.Errorf("drain host state %s", got)
	}
	f.Release("drain")
	if got := f.Host("drain").Status().State; got != HostHealthy {
		t.Errorf("released host state %s", got)
	}
}

func TestJobFaultsDoNotCountAgainstTheHost(t *testing.T) {
	f := newTestFleet(t, HostConfig{Name: "a"})
	h := f.Host("a")
	jobFault := &engine.Error{Host: "a", Op: "container create", Class: engine.ClassJob, Err: errors.New("no such image")}
	for range 10 {
		l := mustPlace(t, f, Request{})
		l.Done(jobFault)
		h.Release()
	}
	if st := h.Status(); st.Breaker.State != breaker.StateClosed || st.Breaker.ConsecutiveFailures != 0 {
		t.Fatalf("after job faults: %+v", st.Breaker)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 10 {
		h.Call(ctx, func(ctx context.Context, _ *engine.Client) error { return ctx.Err() })
	}
	if st := h.Status(); st.Breaker.State != breaker.StateClosed {
		t.Fatalf("after cancelled calls: %+v", st.Breaker)
	}
}

func TestPlaceNeverOverfillsUnderConcurrency(t *testing.T) {
	f := newTestFleet(t, HostConfig{Name: "a", Capacity: 3}, HostConfig{Name: "b", Capacity: 2})
	var placed atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if l, err := f.Place(Request{}); err == nil {
				l.Done(nil)
				placed.Add(1)
			}
		}()
	}
	wg.Wait()
	if placed.Load() != 5 || f.Host("a").Running() != 3 || f.Host("b").Running() != 2 {
		t.Fatalf("placed %d (a=%d b=%d), want 5 (3+2)", placed.Load(), f.Host("a").Running(), f.Host("b").Running())
	}
}

func TestBreakerTransitionsAreRecordedAndPublished(t *testing.T) {
	f := newTestFleet(t, HostConfig{Name: "a"})
	var got []Transition
	var mu sync.Mutex
	f.Subscribe(func(tr Transition) { mu.Lock(); got = append(got, tr); mu.Unlock() })
	f.Isolate("a")
	f.Release("a")
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].To != breaker.StateForcedOpen || got[1].To != breaker.StateClosed {
		t.Fatalf("transitions %+v", got)
	}
	if len(f.Transitions()) != 2 {
		t.Fatalf("recorded %+v", f.Transitions())
	}
}

func TestPlaceSpreadsTiesOverIdleHosts(t *testing.T) {
	f := newTestFleet(t, HostConfig{Name: "a"}, HostConfig{Name: "b"}, HostConfig{Name: "c"})
	got := map[string]int{}
	for range 9 { // each job ends before the next: every host is idle each time
		l := mustPlace(t, f, Request{})
		got[l.Host().Name()]++
		l.Done(nil)
		l.Host().Release()
	}
	if got["a"] != 3 || got["b"] != 3 || got["c"] != 3 {
		t.Fatalf("placements %v, want 3 each", got)
	}
}

func TestPlacePrefersHostsWhoseHealthChecksPass(t *testing.T) {
	f := newTestFleet(t, HostConfig{Name: "a"}, HostConfig{Name: "b"})
	// a's check fails (its socket does not exist), b's is never run: b is
	// not suspect.
	f.CheckNow(context.Background(), f.Host("a"))
	for range 3 {
		l := mustPlace(t, f, Request{})
		if l.Host().Name() != "b" {
			t.Fatalf("placed on %s, whose health check just failed", l.Host().Name())
		}
		l.Done(nil)
		l.Host().Release()
	}
}
