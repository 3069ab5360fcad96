package breaker

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestRegistryGetOrCreate(t *testing.T) {
	r, err := NewRegistry(Settings{ConsecutiveFailures: 2})
	if err != nil {
		t.Fatal(err)
	}
	a := r.Get("host a")
	if r.Get("host a") != a {
		t.Fatal("Get returned a different breaker for the same name")
	}
	if a.Name() != "host a" || a.Settings().ConsecutiveFailures != 2 {
		t.Fatalf("created with %+v", a.Settings())
	}
	b, err := r.GetWith("host b", Settings{ConsecutiveFailures: 7})
	if err != nil || b.Settings().ConsecutiveFailures != 7 {
		t.Fatalf("GetWith: %v, %+v", err, b)
	}
	// GetWith on an existing name returns it, settings unused.
	if b2, err := r.GetWith("host b", Settings{Jitter: 9}); err != nil || b2 != b {
		t.Fatalf("GetWith existing: %v", err)
	}
	if _, err := r.GetWith("host c", Settings{Jitter: 9}); err == nil {
		t.Fatal("GetWith accepted invalid settings")
	}
	if _, ok := r.Lookup("host c"); ok {
		t.Fatal("invalid settings created a breaker")
	}
	if got, ok := r.Lookup("host a"); !ok || got != a {
		t.Fatal("Lookup")
	}
	if !r.Remove("host a") || r.Remove("host a") {
		t.Fatal("Remove")
	}
	if r.Get("host a") == a {
		t.Fatal("Get after Remove returned the removed breaker")
	}
}

func TestRegistryListResetAll(t *testing.T) {
	r, _ := NewRegistry(Settings{ConsecutiveFailures: 1})
	for _, n := range []string{"h3", "h1", "h2"} {
		_ = r.Get(n).Execute(context.Background(), failing)
	}
	var names []string
	for _, b := range r.List() {
		names = append(names, b.Name())
	}
	if !slices.Equal(names, []string{"h1", "h2", "h3"}) {
		t.Fatalf("List = %v, want sorted", names)
	}
	for _, s := range r.Snapshots() {
		if s.State != StateOpen {
			t.Fatalf("%s is %v", s.Name, s.State)
		}
	}
	r.ResetAll()
	for _, s := range r.Snapshots() {
		if s.State != StateClosed {
			t.Fatalf("%s is %v after ResetAll", s.Name, s.State)
		}
	}
}

func TestRegistryListener(t *testing.T) {
	var mu sync.Mutex
	var got []string
	var own []string
	r, _ := NewRegistry(Settings{
		ConsecutiveFailures: 1,
		OnStateChange:       func(name string, from, to State) { own = append(own, name) },
	})
	r.OnStateChange(func(name string, from, to State) {
		mu.Lock()
		defer mu.Unlock()
		// The listener may use the registry and the breaker.
		st := r.Get(name).State()
		got = append(got, fmt.Sprintf("%s:%v->%v(%v)", name, from, to, st))
	})
	_ = r.Get("h1").Execute(context.Background(), failing)
	_ = r.Get("h2").Execute(context.Background(), failing)
	r.Get("h1").Isolate()
	r.ResetAll()
	want := []string{
		"h1:closed->open(open)",
		"h2:closed->open(open)",
		"h1:open->forced-open(forced-open)",
		"h1:forced-open->closed(closed)",
		"h2:open->closed(closed)",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("registry events\n got %v\nwant %v", got, want)
	}
	if len(own) != 5 {
		t.Fatalf("the default OnStateChange saw %v", own)
	}
}

// TestRegistryConcurrent creates and uses the same names from many
// goroutines: each name must map to exactly one breaker.
func TestRegistryConcurrent(t *testing.T) {
	r, _ := NewRegistry(Settings{})
	const goroutines, names = 16, 50
	seen := make([][]*Breaker, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range names {
				n := fmt.Sprintf("host-%d", (i+g)%names)
				b := r.Get(n)
				_ = b.Execute(context.Background(), succeed)
				seen[g] = append(seen[g], b)
			}
			r.List()
		})
	}
	wg.Wait()
	byName := map[string]*Breaker{}
	for _, bs := range seen {
		for _, b := range bs {
			if prev, ok := byName[b.Name()]; ok && prev != b {
				t.Fatalf("two breakers named %s", b.Name())
			}
			byName[b.Name()] = b
		}
	}
	if len(r.List()) != names {
		t.Fatalf("%d breakers, want %d", len(r.List()), names)
	}
	var total uint64
	for _, s := range r.Snapshots() {
		total += s.Totals.Successes
	}
	if total != goroutines*names {
		t.Fatalf("%d successes counted, want %d", total, goroutines*names)
	}
}

func TestRegistryBreakersAreIndependent(t *testing.T) {
	clock := NewManualClock(t0)
	r, _ := NewRegistry(Settings{Clock: clock, OpenDuration: time.Minute})
	for range 5 {
		_ = r.Get("bad").Execute(context.Background(), failing)
	}
	if r.Get("bad").State() != StateOpen || r.Get("good").State() != StateClosed {
		t.Fatal("one bad host tripped another")
	}
}
