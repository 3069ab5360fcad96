package breaker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// These benchmarks measure the package on its own; the comparison with other
// libraries lives in the separate module fusebox/bench.

var errBench = errors.New("bench failure")

func ok(context.Context) error { return nil }

func BenchmarkExecuteClosed(b *testing.B) {
	br := MustNew("bench", Settings{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_ = br.Execute(ctx, ok)
	}
}

func BenchmarkExecuteClosedParallel(b *testing.B) {
	br := MustNew("bench", Settings{})
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = br.Execute(ctx, ok)
		}
	})
}

func BenchmarkExecuteClosedWindowParallel(b *testing.B) {
	br := MustNew("bench", Settings{FailureRate: 0.5})
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = br.Execute(ctx, ok)
		}
	})
}

func BenchmarkDoClosed(b *testing.B) {
	br := MustNew("bench", Settings{})
	ctx := context.Background()
	fn := func(context.Context) (int, error) { return 1, nil }
	b.ReportAllocs()
	for b.Loop() {
		_, _ = Do(ctx, br, fn)
	}
}

func BenchmarkAllowDone(b *testing.B) {
	br := MustNew("bench", Settings{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		t, err := br.Allow(ctx)
		if err == nil {
			t.Done(nil)
		}
	}
}

func BenchmarkOpenReject(b *testing.B) {
	br := MustNew("bench", Settings{OpenDuration: time.Hour})
	ctx := context.Background()
	for range ConsecutiveFailuresDefault {
		_ = br.Execute(ctx, func(context.Context) error { return errBench })
	}
	if br.State() != StateOpen {
		b.Fatal("not open")
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := br.Execute(ctx, ok); err == nil {
				b.Error("admitted")
			}
		}
	})
}

func BenchmarkFailureMixParallel(b *testing.B) {
	br := MustNew("bench", Settings{})
	ctx := context.Background()
	fail := func(context.Context) error { return errBench }
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if i%100 == 0 {
				_ = br.Execute(ctx, fail)
			} else {
				_ = br.Execute(ctx, ok)
			}
		}
	})
	if br.State() != StateClosed {
		b.Fatal("tripped")
	}
}

func hostNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("host-%02d", i)
	}
	return names
}

// BenchmarkRegistryLookup compares the Registry's copy-on-write map with a
// sync.Map and an RWMutex-guarded map, for the lookup of existing names.
func BenchmarkRegistryLookup(b *testing.B) {
	names := hostNames(100)
	b.Run("registry", func(b *testing.B) {
		r, _ := NewRegistry(Settings{})
		for _, n := range names {
			r.Get(n)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				_ = r.Get(names[i%len(names)])
				i++
			}
		})
	})
	b.Run("syncmap", func(b *testing.B) {
		var m sync.Map
		for _, n := range names {
			m.Store(n, MustNew(n, Settings{}))
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				v, _ := m.Load(names[i%len(names)])
				_ = v.(*Breaker)
				i++
			}
		})
	})
	b.Run("rwmutex", func(b *testing.B) {
		var mu sync.RWMutex
		m := map[string]*Breaker{}
		for _, n := range names {
			m[n] = MustNew(n, Settings{})
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				mu.RLock()
				_ = m[names[i%len(names)]]
				mu.RUnlock()
				i++
			}
		})
	})
}
